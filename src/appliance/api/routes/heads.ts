import type { FastifyPluginAsync } from 'fastify';
import { EtcdUnavailableError } from '../../db/index.js';
import { HeadsError, type Head, type Heads } from '../../heads/heads.js';
import { ok } from '../envelope.js';
import { HttpError } from '../errors.js';
import { arrayOf } from '../schemas.js';

export interface HeadRoutesOptions {
  version: string;
  /** This head's name: its etcd member's, or the host name of a lone head. */
  headName: string;
  /** The etcd members, when the database is etcd; absent for SQLite (one head). */
  heads?: Heads | undefined;
  log?: (line: string) => void;
}

const headSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    id: { type: 'string' },
    healthy: { type: 'boolean' },
    leader: { type: 'boolean' },
    version: { type: ['string', 'null'], description: "etcd's version on that head (the product's on a lone head)" },
    backend: { type: 'string' },
    peer_urls: arrayOf({ type: 'string' }),
    client_urls: arrayOf({ type: 'string' }),
    db_size: { type: ['number', 'null'] },
    started: { type: 'boolean' },
    error: { type: 'string' },
  },
} as const;

const addBody = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 63 },
    address: { type: 'string', maxLength: 15 },
  },
  required: ['name', 'address'],
  additionalProperties: false,
} as const;

const nameParams = { type: 'object', properties: { name: { type: 'string', maxLength: 63 } }, required: ['name'] } as const;

/** HeadsError → its status; etcd gone → 503 naming it. */
function asHttp(err: unknown): unknown {
  if (err instanceof HeadsError) return new HttpError(err.status, err.message);
  if (err instanceof EtcdUnavailableError) return new HttpError(503, err.message);
  return err;
}

/** `/heads` (GET, POST) and `/head/:name` (DELETE). */
export const headRoutes: FastifyPluginAsync<HeadRoutesOptions> = async (app, options) => {
  const { heads, headName, version } = options;
  const log = options.log ?? (() => {});
  const alone = (): never => {
    throw HttpError.conflict('this head node is alone (its database is SQLite): start heads with --etcd-member and --join (README, "Several head nodes")');
  };

  app.get(
    '/heads',
    { config: { summary: 'The head nodes: with etcd, its members, each asked for its health, leader and version', tags: ['cluster'], data: arrayOf(headSchema) } },
    async () => {
      if (!heads) return ok([{ name: headName, version, backend: app.store.backend, healthy: true, leader: true }]);
      try {
        return ok((await heads.list()).map((h: Head) => ({ ...h, backend: 'etcd' })));
      } catch (err) {
        throw asHttp(err);
      }
    },
  );

  app.post(
    '/heads',
    {
      schema: { body: addBody },
      config: {
        summary: "Admits a new head (cw-containerctl start --join does this): adds its etcd member and answers what it needs to start, the heads' CA key included",
        tags: ['cluster'],
        data: { type: 'object', properties: { name: { type: 'string' }, address: { type: 'string' }, initial_cluster: { type: 'string' } } },
      },
    },
    async (request, reply) => {
      if (!heads) alone();
      const { name, address } = request.body as { name: string; address: string };
      try {
        const bundle = await heads!.add(name, address);
        log(`head ${name} (${address}) added as an etcd member by ${request.user?.name ?? 'an admin'}; the cluster waits for it to start`);
        reply.header('cache-control', 'no-store');
        return ok(bundle);
      } catch (err) {
        throw asHttp(err);
      }
    },
  );

  app.delete(
    '/head/:name',
    {
      schema: { params: nameParams },
      config: { summary: 'Removes a head from the etcd cluster; refused when the heads left would lose their quorum', tags: ['cluster'], data: headSchema },
    },
    async (request) => {
      if (!heads) alone();
      const { name } = request.params as { name: string };
      try {
        const removed = await heads!.remove(name, headName);
        log(`head ${removed.name || name} removed from the etcd cluster by ${request.user?.name ?? 'an admin'}`);
        return ok({ ...removed, backend: 'etcd' });
      } catch (err) {
        throw asHttp(err);
      }
    },
  );
};

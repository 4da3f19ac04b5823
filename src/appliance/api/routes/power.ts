// Power actions on nodes through their power_uri: `POST /nodes/power` for a node range (bounded
// fan-out, one answer per node) and `POST /node/:id/power` for one node. A node without a power_uri of
// its own uses `_power_uri` inherited from its attribute groups. With `Accept: application/x-ndjson` the
// bulk route streams one line per node as it answers (ndjson.ts).
import type { FastifyPluginAsync } from 'fastify';
import { join } from 'node:path';
import type { JsonSchema } from '../../db/fields.js';
import type { Node } from '../../db/nodes.js';
import type { Store } from '../../db/store.js';
import type { CommandRunner } from '../../power/command.js';
import {
  DEFAULT_POWER_FANOUT,
  DEFAULT_POWER_TIMEOUT_MS,
  Limiter,
  powerMany,
  powerNode,
  type PowerNode,
  type PowerResult,
  type PowerRunOptions,
} from '../../power/run.js';
import type { SshIdentity } from '../../power/ssh.js';
import { POWER_ACTIONS, type NodePowerAction } from '../../power/types.js';
import { compressNames } from '../../../lib/noderange.js';
import { storagePaths, type StoragePaths } from '../../../lib/storage-layout.js';
import { ok } from '../envelope.js';
import { HttpError } from '../errors.js';
import { ndjsonSchema, perNodeAnswer } from '../ndjson.js';
import { arrayOf, idParams } from '../schemas.js';

/** Most nodes one request may work on at once. */
export const MAX_POWER_FANOUT = 1024;
/** Power actions running at once over all requests (each is a process or an HTTP exchange). */
export const POWER_CONCURRENCY = 512;
/** Longest per-node deadline a caller may ask for, in seconds. */
export const MAX_POWER_TIMEOUT_S = 600;

export interface PowerRouteOptions {
  paths?: StoragePaths;
  /** Runs plugin programs (tests: a fake); default execa. */
  run?: CommandRunner;
  /** Makes plugins (tests: slow or failing ones); default by scheme. */
  pluginFor?: PowerRunOptions['pluginFor'];
  /** Actions at once over all requests (default POWER_CONCURRENCY). */
  concurrency?: number;
  /** One line per power request: who asked for what, and how it went (never a power_uri). */
  log?: (line: string) => void;
}

const actionSchema: JsonSchema = {
  enum: [...POWER_ACTIONS],
  description: 'status; on; off (hard); soft (ask the OS to shut down); restart (graceful, Redfish and libvirt); cycle; reset; boot (on if off, reset if on)',
};
const timeoutSchema: JsonSchema = {
  type: 'number',
  exclusiveMinimum: 0,
  maximum: MAX_POWER_TIMEOUT_S,
  description: `per-node deadline in seconds (default ${DEFAULT_POWER_TIMEOUT_MS / 1000})`,
};

const result: JsonSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    ok: { type: 'boolean' },
    state: { enum: ['on', 'off'], description: 'the power state (status), or the state found before boot' },
    result: { type: 'string', description: 'what was done or found: on, off, reset, cycle, soft, restart' },
    error: { type: 'string', description: 'one line, e.g. BMC 10.1.15.7 did not answer within 10 s' },
  },
  required: ['name', 'ok'],
};

const bulkBody: JsonSchema = {
  type: 'object',
  properties: {
    ids: {
      type: 'string',
      minLength: 1,
      maxLength: 4 * 1024 * 1024,
      description: 'node ids: names, ranges n[0-15], @group, all, MACs, IPs, uids (comma separated; -x excludes)',
    },
    action: actionSchema,
    fanout: { type: 'integer', minimum: 1, maximum: MAX_POWER_FANOUT, description: `nodes at once (default ${DEFAULT_POWER_FANOUT})` },
    timeout: timeoutSchema,
    stagger: {
      type: 'object',
      properties: {
        nodes: { type: 'integer', minimum: 1, maximum: 1_000_000 },
        seconds: { type: 'number', exclusiveMinimum: 0, maximum: 3600 },
      },
      required: ['nodes', 'seconds'],
      additionalProperties: false,
      description: 'start at most `nodes` nodes every `seconds` (e.g. 40 every 2 s), so a rack does not trip its breaker',
    },
  },
  required: ['ids', 'action'],
  additionalProperties: false,
};

const oneBody: JsonSchema = {
  type: 'object',
  properties: { action: actionSchema, timeout: timeoutSchema },
  required: ['action'],
  additionalProperties: false,
};

/** The power_uri a node is controlled by: its own, else `_power_uri` from its attribute groups. */
export async function effectivePowerUri(store: Store, node: Node): Promise<string | null> {
  if (node.power_uri) return node.power_uri;
  const resolved = await store.resolveAttributes(node);
  return resolved._power_uri?.value ?? null;
}

export const powerRoutes: FastifyPluginAsync<PowerRouteOptions> = async (app, options) => {
  const store = app.store;
  const paths = options.paths ?? storagePaths();
  const identity: SshIdentity = { keyFile: join(paths.sshDir, 'id_ed25519'), knownHostsFile: join(paths.sshDir, 'known_hosts') };
  const limiter = new Limiter(options.concurrency ?? POWER_CONCURRENCY);
  const tags = ['nodes'];
  const runOptions = (timeout: number | undefined): PowerRunOptions => ({
    identity,
    timeoutMs: timeout === undefined ? DEFAULT_POWER_TIMEOUT_MS : Math.round(timeout * 1000),
    ...(options.run ? { run: options.run } : {}),
    ...(options.pluginFor ? { pluginFor: options.pluginFor } : {}),
  });
  const log = options.log ?? (() => {});
  const who = (request: { user?: { name: string } }) => request.user?.name ?? 'anonymous';
  const targets = async (nodes: readonly Node[]): Promise<PowerNode[]> =>
    Promise.all(nodes.map(async (n) => ({ name: n.name, powerUri: await effectivePowerUri(store, n) })));

  app.post(
    '/nodes/power',
    {
      schema: { body: bulkBody },
      config: {
        summary: 'Run a power action on nodes through their power_uri: one answer per node, in node order; a node that fails does not stop the others',
        tags,
        data: arrayOf(result),
        ndjson: ndjsonSchema(result),
      },
    },
    async (request, reply) => {
      const body = request.body as { ids: string; action: NodePowerAction; fanout?: number; timeout?: number; stagger?: { nodes: number; seconds: number } };
      const nodes = await store.selectNodes(body.ids);
      if (nodes.length === 0) throw HttpError.notFound('No nodes found, nothing was done');
      const list = await targets(nodes);
      return perNodeAnswer<PowerResult>(
        request,
        reply,
        (onResult) =>
          powerMany(list, body.action, {
            ...runOptions(body.timeout),
            fanout: body.fanout ?? DEFAULT_POWER_FANOUT,
            limiter,
            ...(body.stagger ? { stagger: body.stagger } : {}),
            ...(onResult ? { onResult } : {}),
          }),
        (results) => {
          const failed = results.filter((r) => !r.ok).map((r) => r.name);
          log(
            `power ${body.action} ${compressNames(results.map((r) => r.name))} by ${who(request)}: ${results.length - failed.length} ok` +
              (failed.length > 0 ? `, ${failed.length} failed (${compressNames(failed)})` : ''),
          );
        },
      );
    },
  );

  app.post(
    '/node/:id/power',
    {
      schema: { params: idParams, body: oneBody },
      config: { summary: 'Run a power action on one node (the answer says ok: false with the error when it failed)', tags, data: result },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const body = request.body as { action: NodePowerAction; timeout?: number };
      const node = await store.getNode(id);
      if (!node) throw HttpError.notFound(`no such node: ${id}`);
      const [target] = await targets([node]);
      const answer = await limiter.use(() => powerNode(target as PowerNode, body.action, runOptions(body.timeout)));
      log(`power ${body.action} ${answer.name} by ${who(request)}: ${answer.ok ? answer.result : `ERROR: ${answer.error}`}`);
      return ok(answer);
    },
  );
};

import type { FastifyPluginAsync } from 'fastify';
import { objectSchema, writeSchema } from '../../db/collections.js';
import type { JsonSchema } from '../../db/fields.js';
import { withNodeState } from '../../db/node-status.js';
import { NODE_SPEC, type Node, type NodeInput } from '../../db/nodes.js';
import { ok } from '../envelope.js';
import { HttpError } from '../errors.js';
import { arrayOf, flag, idParams } from '../schemas.js';

/** Most nodes one bulk create may carry. */
export const MAX_BULK_NODES = 100_000;

const node = objectSchema(NODE_SPEC);
const nodeCreate = writeSchema(NODE_SPEC, 'create');
const nodePatch = writeSchema(NODE_SPEC, 'patch');
const tags = ['nodes'];

const idsSpec: JsonSchema = {
  type: 'string',
  minLength: 1,
  maxLength: 4 * 1024 * 1024,
  description: 'node ids: names, ranges n[0-15], @group, all, MACs, IPs, uids (comma separated; -x excludes)',
};

const idsQuery: JsonSchema = { type: 'object', properties: { ids: idsSpec }, additionalProperties: false };

const bulkPatch: JsonSchema = {
  type: 'object',
  properties: {
    ids: { anyOf: [idsSpec, { type: 'array', items: { type: 'string', maxLength: 128 }, minItems: 1, maxItems: MAX_BULK_NODES }] },
    set: { type: 'object', additionalProperties: { type: 'string' }, description: 'attributes to set' },
    unset: { type: 'array', items: { type: 'string', maxLength: 128 }, description: 'attributes to remove' },
  },
  required: ['ids'],
  additionalProperties: false,
};

const resolvedAttributes: JsonSchema = {
  type: 'object',
  additionalProperties: {
    type: 'object',
    properties: { value: { type: 'string' }, from: { enum: ['node', 'group'] }, group: { type: 'string' } },
    required: ['value', 'from'],
  },
  description: 'with ?resolved=1: each effective attribute, its value and where it comes from; else the node\'s own attributes',
};

const notFound = (id: string) => HttpError.notFound(`no such node: ${id}`);

export interface NodeRouteOptions {
  /** Milliseconds since the epoch (default Date.now): each node's `status.state` is derived at this time. */
  clock?: () => number;
}

/** `/nodes` and `/node/:id`. Every node answered carries `status.state` (new, up, down, booting:STAGE, error). */
export const nodeRoutes: FastifyPluginAsync<NodeRouteOptions> = async (app, options) => {
  const store = app.store;
  const clock = options.clock ?? Date.now;
  const shown = (node: Node): Node => withNodeState(node, clock());
  const shownAll = (nodes: Node[]): Node[] => {
    const now = clock();
    return nodes.map((n) => withNodeState(n, now));
  };

  app.get(
    '/nodes',
    { schema: { querystring: idsQuery }, config: { summary: 'List nodes (all, or those ?ids= names)', tags, data: arrayOf(node) } },
    async (request) => {
      const { ids } = request.query as { ids?: string };
      return ok(shownAll(ids === undefined ? await store.listNodes() : await store.selectNodes(ids)));
    },
  );

  app.post(
    '/nodes',
    {
      schema: {
        body: { if: { type: 'array' }, then: { type: 'array', items: nodeCreate, minItems: 1, maxItems: MAX_BULK_NODES }, else: nodeCreate },
      },
      config: {
        summary: 'Create a node, or many in one transaction (a list)',
        tags,
        successStatus: 201,
        data: { oneOf: [node, arrayOf(node)] },
      },
    },
    async (request, reply) => {
      const body = request.body as NodeInput | NodeInput[];
      const created = Array.isArray(body) ? shownAll(await store.createNodes(body)) : shown(await store.createNode(body));
      reply.code(201);
      return ok(created);
    },
  );

  app.patch(
    '/nodes',
    { schema: { body: bulkPatch }, config: { summary: 'Set and unset attributes of many nodes in one transaction', tags, data: arrayOf(node) } },
    async (request) => {
      const { ids, set, unset } = request.body as { ids: string | string[]; set?: Record<string, string>; unset?: string[] };
      return ok(shownAll(await store.updateNodeAttributes(ids, { set, unset })));
    },
  );

  app.delete(
    '/nodes',
    {
      schema: { querystring: { ...idsQuery, required: ['ids'] } },
      config: { summary: 'Delete the nodes ?ids= names, in one transaction', tags, data: arrayOf(node) },
    },
    async (request) => ok(shownAll(await store.removeNodes((request.query as { ids: string }).ids))),
  );

  app.get(
    '/node/:id',
    { schema: { params: idParams }, config: { summary: 'One node by uid, name, MAC or IP', tags, data: node } },
    async (request) => {
      const { id } = request.params as { id: string };
      const found = await store.getNode(id);
      if (!found) throw notFound(id);
      return ok(shown(found));
    },
  );

  app.put(
    '/node/:id',
    { schema: { params: idParams, body: nodeCreate }, config: { summary: 'Replace the writable fields of a node', tags, data: node } },
    async (request) => ok(shown(await store.replaceNode((request.params as { id: string }).id, request.body as NodeInput))),
  );

  app.patch(
    '/node/:id',
    {
      schema: { params: idParams, body: nodePatch },
      config: { summary: 'Change fields of a node (attributes merge; null deletes a key)', tags, data: node },
    },
    async (request) => ok(shown(await store.updateNode((request.params as { id: string }).id, request.body as NodeInput))),
  );

  app.delete(
    '/node/:id',
    { schema: { params: idParams }, config: { summary: 'Delete a node', tags, data: node } },
    async (request) => ok(shown(await store.removeNode((request.params as { id: string }).id))),
  );

  app.get(
    '/node/:id/attributes',
    {
      schema: {
        params: idParams,
        querystring: { type: 'object', properties: { resolved: { type: 'string', maxLength: 8 } }, additionalProperties: false },
      },
      config: { summary: 'A node\'s attributes; ?resolved=1 adds inherited ones and their origin', tags, data: resolvedAttributes },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const { resolved } = request.query as { resolved?: string };
      if (flag(resolved)) return ok(await store.resolveAttributes(id));
      const found = await store.getNode(id);
      if (!found) throw notFound(id);
      return ok(found.attributes);
    },
  );
};

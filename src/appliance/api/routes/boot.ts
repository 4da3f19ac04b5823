// The anonymous boot endpoints (docs/BOOT.md, "The boot chain"): iPXE scripts for booting NICs and the
// status reports of initramfs and node agent. Nodes have no credentials, so these routes only read the
// cluster model, and write nothing but the status of a node that already exists.
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { normalizeMac } from '../../../lib/validate.js';
import { planNodeScript, type BootFiles } from '../../boot/ipxe/plan.js';
import { headUrlOf, renderBootstrapScript } from '../../boot/ipxe/script.js';
import { nodeState, parseStatusReport, statusOfReport } from '../../db/node-status.js';
import type { StoragePaths } from '../../../lib/storage-layout.js';
import { ok } from '../envelope.js';
import { HttpError } from '../errors.js';

export interface BootRouteOptions {
  /** Where kernels, initramfs files and images live; without it every node is told to wait. */
  paths?: Pick<StoragePaths, 'bootDir' | 'imagesDir'>;
  /** Milliseconds since the epoch (default Date.now): the time of `last_seen`. */
  clock?: () => number;
  log?: (line: string) => void;
}

/** A status report is a few hundred bytes; anything much larger is not one. */
const STATUS_BODY_LIMIT = 16 * 1024;

const macParams = {
  type: 'object',
  properties: { mac: { type: 'string', minLength: 1, maxLength: 64, description: 'MAC of the booting NIC' } },
  required: ['mac'],
  additionalProperties: false,
};

const statusBody = {
  type: 'object',
  description: 'stage (ipxe, initramfs, image, up, error) and optional ip, kernel, uptime, load, ram_free, ram_total, message; other fields are ignored',
  properties: {
    stage: { enum: ['ipxe', 'initramfs', 'image', 'up', 'error'] },
    ip: { type: 'string', description: 'dotted IPv4 address' },
    kernel: { type: 'string', description: 'kernel release (uname -r)' },
    uptime: { type: 'number', minimum: 0, description: 'seconds' },
    load: { oneOf: [{ type: 'number', minimum: 0 }, { type: 'array', items: { type: 'number', minimum: 0 }, minItems: 1, maxItems: 3 }] },
    ram_free: { type: 'integer', minimum: 0, description: 'bytes' },
    ram_total: { type: 'integer', minimum: 0, description: 'bytes' },
    message: { type: 'string', maxLength: 300 },
  },
  required: ['stage'],
};

const tags = ['boot'];

function sendScript(reply: FastifyReply, text: string, status = 200): FastifyReply {
  return reply.code(status).header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-store').send(text);
}

/** Sent when the request names no usable host: there is no URL to chain to, so the node gives up on this try. */
const NO_HOST_SCRIPT = '#!ipxe\necho cw-headnode: the request had no usable Host header; cannot tell this node where to boot from\nsleep 30\nexit 1\n';

/** `/boot/ipxe`, `/boot/ipxe/:mac`, `/boot/status/:mac`. */
export const bootRoutes: FastifyPluginAsync<BootRouteOptions> = async (app, options) => {
  const store = app.store;
  const clock = options.clock ?? Date.now;
  const log = options.log ?? (() => {});
  const files: BootFiles | null = options.paths ? { bootDir: options.paths.bootDir, imagesDir: options.paths.imagesDir } : null;

  app.get(
    '/boot/ipxe',
    { config: { anonymous: true, summary: 'iPXE bootstrap script: chains the script of the booting NIC (text/plain, not an envelope)', tags } },
    async (request, reply) => {
      const head = headUrlOf(request.headers.host);
      if (head === null) return sendScript(reply, NO_HOST_SCRIPT, 400);
      return sendScript(reply, renderBootstrapScript(head));
    },
  );

  app.get(
    '/boot/ipxe/:mac',
    {
      schema: { params: macParams },
      config: {
        anonymous: true,
        summary: 'iPXE script of the node with this MAC, or one that says why it cannot boot and retries (text/plain, not an envelope)',
        tags,
      },
    },
    async (request, reply) => {
      const head = headUrlOf(request.headers.host);
      if (head === null) return sendScript(reply, NO_HOST_SCRIPT, 400);
      const { mac } = request.params as { mac: string };
      const planned = await planNodeScript(store, files, mac, head);
      if (planned.node) {
        const status = planned.refused === null ? { stage: 'ipxe' } : { stage: 'ipxe', message: planned.refused.slice(0, 300) };
        // The script matters more than the record: a busy database must not keep a node from booting.
        await store.setNodeStatus(planned.node.uid, status, new Date(clock())).catch((err: unknown) => {
          log(`boot stage of ${planned.node?.name ?? mac} not recorded: ${err instanceof Error ? err.message : String(err)}`);
        });
      }
      return sendScript(reply, planned.text);
    },
  );

  app.post(
    '/boot/status/:mac',
    {
      bodyLimit: STATUS_BODY_LIMIT,
      schema: { params: macParams, body: statusBody },
      config: {
        anonymous: true,
        summary: 'Status report of a booting or running node (initramfs, node agent); unknown MACs are 404',
        tags,
        data: { type: 'object', properties: { name: { type: 'string' }, state: { type: 'string' } } },
      },
    },
    async (request) => {
      const { mac: raw } = request.params as { mac: string };
      const mac = normalizeMac(raw);
      if (mac === null) throw HttpError.badRequest(`mac: invalid MAC ${JSON.stringify(raw.slice(0, 40))}: expected six hex pairs like 52:54:00:00:00:01`);
      const report = parseStatusReport(request.body);
      const node = await store.getNode(mac);
      if (!node || (node.mac !== mac && !node.macs.includes(mac))) throw HttpError.notFound(`no such node: ${mac}`);
      const now = clock();
      const saved = await store.setNodeStatus(node.uid, statusOfReport(report), new Date(now));
      return ok({ name: saved.name, state: nodeState(saved.status, saved.last_seen, now) });
    },
  );
};

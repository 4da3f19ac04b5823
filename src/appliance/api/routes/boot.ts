// The anonymous boot endpoints (docs/BOOT.md, "The boot chain"): iPXE scripts for booting NICs and the
// status reports of initramfs and node agent. Nodes have no admin credentials: a node proves who it is
// with the secret of its current boot (docs/BOOT.md, "Node secrets"), which it gets in its iPXE script
// only when it asks from its own assigned address. These routes write nothing but a node's status and
// the hash of its secret, and only for a node that already exists.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import { normalizeMac } from '../../../lib/validate.js';
import { planNodeScript, type BootFiles, type SecretFor } from '../../boot/ipxe/plan.js';
import { checkNodeSecret, hashNodeSecret, newNodeSecret, NODE_SECRET_HEADER, RefusalCounter } from '../../boot/node-secret.js';
import type { Node } from '../../db/nodes.js';
import { sourceOf } from '../auth/index.js';
import { headUrlOf, renderBootstrapScript } from '../../boot/ipxe/script.js';
import { nodeState, parseStatusReport, statusOfReport } from '../../db/node-status.js';
import type { StoragePaths } from '../../../lib/storage-layout.js';
import { LocalBlobs, SHA256_HEX_RE } from '../../blobs/local.js';
import { wantedBlobs, type BlobReplicator } from '../../blobs/replicator.js';
import { ok } from '../envelope.js';
import { HttpError } from '../errors.js';

export interface BootRouteOptions {
  /** Where kernels, initramfs files and images live; without it every node is told to wait. */
  paths?: Pick<StoragePaths, 'bootDir' | 'imagesDir' | 'blobsDir'>;
  /** The other heads' copies of boot files and images (several heads); without it there are none. */
  blobs?: Pick<BlobReplicator, 'holder' | 'hasPeers'>;
  /** Milliseconds since the epoch (default Date.now): the time of `last_seen`. */
  clock?: () => number;
  log?: (line: string) => void;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route logs its own 401/403 refusals (rate limited): the API's request log leaves them out. */
    logsOwnRefusals?: boolean;
  }
}

/** The trustworthy address of the requester (nginx's X-Real-IP, else the peer), IPv4-mapped IPv6 as IPv4. */
export function clientAddress(request: FastifyRequest): string {
  const source = sourceOf(request);
  return source.startsWith('::ffff:') && isIP(source.slice(7)) === 4 ? source.slice(7) : source;
}

/** The node secret sent with a request: the header's value, or undefined (several headers: none). */
function sentSecret(request: FastifyRequest): string | undefined {
  const value = request.headers[NODE_SECRET_HEADER];
  return typeof value === 'string' ? value.trim() : undefined;
}

const SECRET_HELP = `send the secret of this boot in the ${NODE_SECRET_HEADER} header (docs/BOOT.md, "Node secrets")`;

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

/** `/boot/ipxe`, `/boot/ipxe/:mac`, `/boot/status/:mac`, `/boot/secret/:mac` and (admins) `/boot/stats`. */
export const bootRoutes: FastifyPluginAsync<BootRouteOptions> = async (app, options) => {
  const store = app.store;
  const clock = options.clock ?? Date.now;
  const log = options.log ?? (() => {});
  const { paths, blobs } = options;
  const files: BootFiles | null = paths
    ? { bootDir: paths.bootDir, imagesDir: paths.imagesDir, blobs: new LocalBlobs(paths.blobsDir), ...(blobs ? { elsewhere: () => blobs.hasPeers() } : {}) }
    : null;
  const refusals = new RefusalCounter({ log, clock });

  app.get(
    '/boot/ipxe',
    { config: { anonymous: true, summary: 'iPXE bootstrap script: chains the script of the booting NIC (text/plain, not an envelope)', tags } },
    async (request, reply) => {
      const head = headUrlOf(request.headers.host);
      if (head === null) return sendScript(reply, NO_HOST_SCRIPT, 400);
      return sendScript(reply, renderBootstrapScript(head));
    },
  );

  // nginx asks here for a /blobs/<sha256> this head does not hold: a kernel, initramfs or image uploaded
  // to another head and not copied here yet. The node is sent to a head that holds it; plain text, as
  // iPXE and wget show it.
  app.get(
    '/boot/blob/:sha256',
    {
      schema: { params: { type: 'object', properties: { sha256: { type: 'string', maxLength: 64 } }, required: ['sha256'], additionalProperties: false } },
      config: { anonymous: true, summary: 'Redirects to a head that holds this boot file or image (text/plain, not an envelope)', tags },
    },
    async (request, reply) => {
      const { sha256 } = request.params as { sha256: string };
      const text = (status: number, line: string) => reply.code(status).type('text/plain; charset=utf-8').send(`${line}\n`);
      if (!SHA256_HEX_RE.test(sha256)) return text(404, 'not a sha256 in hex');
      if (!paths) return text(404, 'this head node has no storage directory for boot files');
      const wanted = (await wantedBlobs(store, paths)).get(sha256);
      if (!wanted) return text(404, `no image or boot file has sha256 ${sha256}`);
      // Copied here since nginx looked: served by this head after all.
      if (await files!.blobs.has(sha256)) return reply.redirect(`/blobs/here/${sha256}`, 302);
      const url = blobs ? await blobs.holder(sha256) : null;
      if (url === null) return text(404, `${wanted.label} (sha256 ${sha256.slice(0, 12)}…) is on no head node that answers; upload it again`);
      return reply.redirect(url, 302);
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
      const source = clientAddress(request);
      const fromNode = (node: Node): boolean => node.ip !== null && node.ip === source;
      // A secret only for the node's own address, new for every script: the previous boot's stops working.
      let unstored = false;
      const secretFor: SecretFor = async (node) => {
        // Not logged: any host may ask (the script itself says why it has no secret).
        if (!fromNode(node)) return 'elsewhere';
        const secret = newNodeSecret();
        try {
          await store.setNodeSecretHash(node.uid, hashNodeSecret(secret), new Date(clock()));
          return secret;
        } catch (err) {
          // The boot matters more than its reports: a head cut off from the cluster's database still boots.
          log(`node secret of ${node.name} not stored, script sent without one: ${err instanceof Error ? err.message : String(err)}`);
          unstored = true;
          return 'unstored';
        }
      };
      const planned = await planNodeScript(store, files, mac, head, secretFor);
      // Only the node itself moves its status: a script asked for from elsewhere records nothing. Nor one
      // whose secret the store just refused: the record would only wait for the same refusal.
      if (planned.node && fromNode(planned.node) && !unstored) {
        const status = planned.refused === null ? { stage: 'ipxe' } : { stage: 'ipxe', message: planned.refused.slice(0, 300) };
        // The script matters more than the record: a busy database must not keep a node from booting.
        await store.setNodeStatus(planned.node.uid, status, new Date(clock())).catch((err: unknown) => {
          log(`boot stage of ${planned.node?.name ?? mac} not recorded: ${err instanceof Error ? err.message : String(err)}`);
        });
      }
      return sendScript(reply, planned.text);
    },
  );

  /**
   * The node a boot request names, if the request carries that node's current secret: 404 for an unknown
   * MAC, 401 without a secret, 403 with a wrong one (counted, logged, nothing changed). Runs before the
   * body is read.
   */
  const requireNodeSecret = async (request: FastifyRequest): Promise<void> => {
    const { mac: raw } = request.params as { mac: string };
    const mac = normalizeMac(raw);
    if (mac === null) throw HttpError.badRequest(`mac: invalid MAC ${JSON.stringify(raw.slice(0, 40))}: expected six hex pairs like 52:54:00:00:00:01`);
    const node = await store.getNode(mac);
    if (!node || (node.mac !== mac && !node.macs.includes(mac))) throw HttpError.notFound(`no such node: ${mac}`);
    const verdict = checkNodeSecret(sentSecret(request), await store.nodeSecretHash(node.uid));
    if (verdict === 'ok') {
      nodeOf.set(request, node);
      return;
    }
    refusals.refuse(clientAddress(request), mac, verdict);
    if (verdict === 'missing') throw HttpError.unauthorized(`node secret required: ${SECRET_HELP}`);
    throw HttpError.forbidden(`node secret not accepted for ${node.name}: not the secret of its current boot (reboot the node to get a new one)`);
  };
  const nodeOf = new WeakMap<FastifyRequest, Node>();
  const verifiedNode = (request: FastifyRequest): Node => {
    const node = nodeOf.get(request);
    if (!node) throw new Error('node secret not checked');
    return node;
  };

  app.post(
    '/boot/status/:mac',
    {
      bodyLimit: STATUS_BODY_LIMIT,
      onRequest: requireNodeSecret,
      schema: { params: macParams, body: statusBody },
      config: {
        anonymous: true,
        logsOwnRefusals: true,
        summary: `Status report of a booting or running node (initramfs, node agent): needs the node secret in ${NODE_SECRET_HEADER} (401 without, 403 wrong); unknown MACs are 404`,
        tags,
        data: { type: 'object', properties: { name: { type: 'string' }, state: { type: 'string' } } },
      },
    },
    async (request) => {
      const node = verifiedNode(request);
      const report = parseStatusReport(request.body);
      const now = clock();
      const saved = await store.setNodeStatus(node.uid, statusOfReport(report), new Date(now));
      return ok({ name: saved.name, state: nodeState(saved.status, saved.last_seen, now) });
    },
  );

  app.post(
    '/boot/secret/:mac',
    {
      bodyLimit: STATUS_BODY_LIMIT,
      onRequest: requireNodeSecret,
      schema: { params: macParams },
      config: {
        anonymous: true,
        logsOwnRefusals: true,
        summary: `Trade the boot secret of the kernel command line (in ${NODE_SECRET_HEADER}) for a new one, which replaces it: the one the node keeps`,
        tags,
        data: { type: 'object', properties: { secret: { type: 'string' } } },
      },
    },
    async (request, reply) => {
      const node = verifiedNode(request);
      const secret = newNodeSecret();
      await store.setNodeSecretHash(node.uid, hashNodeSecret(secret), new Date(clock()));
      reply.header('cache-control', 'no-store');
      return ok({ secret });
    },
  );

  app.get(
    '/boot/stats',
    {
      config: {
        summary: 'Refused node reports since the API started (no or wrong node secret): counts and the latest',
        tags,
        data: {
          type: 'object',
          properties: {
            refused_reports: {
              type: 'object',
              properties: {
                total: { type: 'integer' },
                missing: { type: 'integer', description: 'without a node secret' },
                wrong: { type: 'integer', description: 'with a secret that is not the node\'s current one' },
                last: {
                  type: ['object', 'null'],
                  properties: { at: { type: 'string' }, source: { type: 'string' }, mac: { type: 'string' }, reason: { type: 'string' } },
                },
              },
            },
          },
        },
      },
    },
    async () => ok({ refused_reports: refusals.stats() }),
  );
};

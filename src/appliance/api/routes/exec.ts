// Commands on nodes over ssh, and soft/hard reboot and shutdown: `POST /nodes/exec` and
// `POST /node/:id/exec`, `POST /nodes/{reboot,shutdown}` and `POST /node/:id/{reboot,shutdown}`.
// Bulk routes answer once every node has, or, with `Accept: application/x-ndjson`, stream one line per
// node as it answers (ndjson.ts): `cw-nodectl` sends one streaming request for all nodes.
import type { FastifyPluginAsync } from 'fastify';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JsonSchema } from '../../db/fields.js';
import { nodeState } from '../../db/node-status.js';
import type { Node } from '../../db/nodes.js';
import type { ExecTarget } from '../../exec/remote.js';
import { execNode, fanOut, DEFAULT_EXEC_FANOUT, DEFAULT_EXEC_TIMEOUT_MS, type ExecRunner } from '../../exec/run.js';
import { controlDir, SshMasters } from '../../exec/masters.js';
import { masterTarget } from '../../exec/remote.js';
import { NODE_OS_ACTIONS, portClosed, rebootNode, REBOOT_MODES, DEFAULT_DOWN_TIMEOUT_MS, type NodeOsAction, type RebootMode } from '../../exec/reboot.js';
import { Limiter, powerNode, type PowerRunOptions } from '../../power/run.js';
import { ensureSshKey, type SshIdentity } from '../../power/ssh.js';
import { compressNames } from '../../../lib/noderange.js';
import { storagePaths, type StoragePaths } from '../../../lib/storage-layout.js';
import { ok } from '../envelope.js';
import { HttpError } from '../errors.js';
import { ndjsonSchema, perNodeAnswer } from '../ndjson.js';
import { arrayOf, idParams } from '../schemas.js';
import { effectivePowerUri, MAX_POWER_FANOUT } from './power.js';

/** Longest per-node deadline, in seconds: below nginx's 600 s read timeout in front of the API. */
export const MAX_EXEC_TIMEOUT_S = 540;
/** ssh processes at once over all requests. */
export const EXEC_CONCURRENCY = 512;
/** Largest stdin given to a command (the tools' inline file limit). */
export const MAX_EXEC_STDIN = 1024 * 1024;

export interface ExecRouteOptions {
  paths?: StoragePaths;
  /** Runs ssh (tests: a fake). */
  run?: ExecRunner;
  /** sshd port on the nodes (default 22). */
  sshPort?: number;
  /** Keep one ssh connection open per node and reuse it (default true; masters.ts). */
  keepConnections?: boolean;
  /** How hard actions run (tests: fake plugins). */
  pluginFor?: PowerRunOptions['pluginFor'];
  log?: (line: string) => void;
  clock?: () => number;
}

const commandSchema: JsonSchema = {
  type: 'array',
  minItems: 1,
  maxItems: 4096,
  items: { type: 'string', maxLength: 128 * 1024, pattern: '^[^\\u0000]*$' },
  description: 'the program and its arguments, run as given on each node (each word is quoted for the remote shell)',
};
const timeout = (defaultS: number, what: string): JsonSchema => ({
  type: 'number',
  exclusiveMinimum: 0,
  maximum: MAX_EXEC_TIMEOUT_S,
  description: `${what} in seconds (default ${defaultS})`,
});
const stdinSchema: JsonSchema = { type: 'string', maxLength: MAX_EXEC_STDIN, description: 'given to the command on standard input' };
const idsSchema: JsonSchema = { type: 'string', minLength: 1, maxLength: 4 * 1024 * 1024, description: 'node ids: names, ranges n[0-15], @group, all' };
const fanoutSchema: JsonSchema = { type: 'integer', minimum: 1, maximum: MAX_POWER_FANOUT, description: `nodes at once (default ${DEFAULT_EXEC_FANOUT})` };
const modeSchema: JsonSchema = {
  enum: [...REBOOT_MODES],
  description: 'soft: ssh and run /usr/sbin/reboot or shutdown -h now; hard: power_uri reset or off; auto (default): soft if up, hard if still up after timeout',
};

const execResult: JsonSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    ok: { type: 'boolean' },
    exit_code: { type: 'integer' },
    stdout: { type: 'string' },
    stderr: { type: 'string' },
    error: { type: 'string', description: 'one line: exit status 2, ssh: Connection refused, no answer within 60 s' },
  },
  required: ['name', 'ok', 'stdout', 'stderr'],
};
const rebootResult: JsonSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    ok: { type: 'boolean' },
    result: { enum: ['soft', 'hard'] },
    note: { type: 'string', description: 'why the hard action was taken' },
    error: { type: 'string' },
  },
  required: ['name', 'ok'],
};

export const execRoutes: FastifyPluginAsync<ExecRouteOptions> = async (app, options) => {
  const store = app.store;
  const paths = options.paths ?? storagePaths();
  const identity: SshIdentity = { keyFile: join(paths.sshDir, 'id_ed25519'), knownHostsFile: join(paths.sshDir, 'known_hosts') };
  const limiter = new Limiter(EXEC_CONCURRENCY);
  const clock = options.clock ?? Date.now;
  const log = options.log ?? (() => {});
  const who = (request: { user?: { name: string } }) => request.user?.name ?? 'anonymous';
  const tags = ['nodes'];
  const sshPort = options.sshPort ?? 22;
  const target = (n: Node): ExecTarget => {
    const hostKey = n.status.ssh_host_key;
    return { name: n.name, ip: n.ip, port: sshPort, ...(typeof hostKey === 'string' ? { hostKey } : {}) };
  };
  // One kept-open connection per node for exec and soft reboot, ended with the API. Power relays and
  // hypervisor hosts are not in it: a power action is one ssh now and then, and keeps its own connection.
  const masters =
    options.keepConnections === false || options.run ? undefined : new SshMasters({ dir: controlDir(paths.sshDir), identity, log });
  if (masters) app.addHook('onClose', async () => masters.close());
  /** A node going down drops its connection: the next exec gets a fresh one at once. */
  const forgetConnection = (n: Node) => {
    if (masters && n.ip !== null) masters.forget(masterTarget({ ...target(n), ip: n.ip }));
  };

  const runExec = (n: Node, command: string[], stdin: string | undefined, timeoutS: number | undefined) =>
    execNode(target(n), command, {
      identity,
      timeoutMs: timeoutS === undefined ? DEFAULT_EXEC_TIMEOUT_MS : Math.round(timeoutS * 1000),
      ...(stdin === undefined ? {} : { input: stdin }),
      ...(options.run ? { run: options.run } : {}),
      ...(masters ? { masters } : {}),
    });

  const runReboot = async (n: Node, action: NodeOsAction, mode: RebootMode, timeoutS: number | undefined) => {
    const isUp = async () => {
      const now = await store.getNode(n.name);
      return now !== undefined && now !== null && nodeState(now.status, now.last_seen, clock()) === 'up';
    };
    const result = await rebootNode(n.name, action, mode, timeoutS === undefined ? DEFAULT_DOWN_TIMEOUT_MS : Math.round(timeoutS * 1000), {
      exec: async (words, timeoutMs) => {
        const r = await execNode(target(n), words, { identity, timeoutMs, ...(options.run ? { run: options.run } : {}), ...(masters ? { masters } : {}) });
        forgetConnection(n);
        return r;
      },
      power: async (action) =>
        powerNode({ name: n.name, powerUri: await effectivePowerUri(store, n) }, action, {
          identity,
          ...(options.pluginFor ? { pluginFor: options.pluginFor } : {}),
        }),
      isUp,
      wentDown: async () => n.ip === null || (await portClosed(n.ip, sshPort)) || !(await isUp()),
    });
    if (result.result === 'hard') forgetConnection(n);
    return result;
  };

  const summary = (what: string, names: string[], failed: string[], request: { user?: { name: string } }) =>
    log(
      `${what} ${compressNames(names)} by ${who(request)}: ${names.length - failed.length} ok` +
        (failed.length > 0 ? `, ${failed.length} failed (${compressNames(failed)})` : ''),
    );

  // Anonymous, public key only: the initramfs of every booting node fetches it and writes it to the
  // node's /root/.ssh/authorized_keys, so exec and soft reboot need no manual step (README, "Commands on
  // nodes"). It is served over the nodes' plain HTTP like the boot script and image it comes with.
  app.get(
    '/boot/authorized-keys',
    {
      config: {
        anonymous: true,
        summary: "The head node's ssh public key for root on the nodes, as an authorized_keys line (text, not in an envelope)",
        tags: ['boot'],
      },
    },
    async (_request, reply) => {
      await ensureSshKey(identity);
      const line = (await readFile(`${identity.keyFile}.pub`, 'utf8')).trim();
      return reply.header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-store').send(`${line}\n`);
    },
  );

  app.post(
    '/nodes/exec',
    {
      schema: {
        body: {
          type: 'object',
          properties: { ids: idsSchema, command: commandSchema, stdin: stdinSchema, fanout: fanoutSchema, timeout: timeout(DEFAULT_EXEC_TIMEOUT_MS / 1000, 'per-node deadline') },
          required: ['ids', 'command'],
          additionalProperties: false,
        },
      },
      config: {
        summary: 'Run a command as root on nodes over ssh: stdout, stderr and exit status of each, in node order (streamed as they answer with Accept: application/x-ndjson)',
        tags,
        data: arrayOf(execResult),
        ndjson: ndjsonSchema(execResult),
      },
    },
    async (request, reply) => {
      const body = request.body as { ids: string; command: string[]; stdin?: string; fanout?: number; timeout?: number };
      const nodes = await store.selectNodes(body.ids);
      if (nodes.length === 0) throw HttpError.notFound('No nodes found, nothing was done');
      return perNodeAnswer(
        request,
        reply,
        (onResult) =>
          fanOut(nodes, (n) => runExec(n, body.command, body.stdin, body.timeout), { fanout: body.fanout ?? DEFAULT_EXEC_FANOUT, limiter, ...(onResult ? { onResult } : {}) }),
        // The command itself is not logged: it may hold anything the admin typed.
        (results) => summary('exec', results.map((r) => r.name), results.filter((r) => !r.ok).map((r) => r.name), request),
      );
    },
  );

  app.post(
    '/node/:id/exec',
    {
      schema: {
        params: idParams,
        body: {
          type: 'object',
          properties: { command: commandSchema, stdin: stdinSchema, timeout: timeout(DEFAULT_EXEC_TIMEOUT_MS / 1000, 'deadline') },
          required: ['command'],
          additionalProperties: false,
        },
      },
      config: { summary: 'Run a command as root on one node over ssh (ok: false with the error when it failed)', tags, data: execResult },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const body = request.body as { command: string[]; stdin?: string; timeout?: number };
      const node = await store.getNode(id);
      if (!node) throw HttpError.notFound(`no such node: ${id}`);
      const result = await limiter.use(() => runExec(node, body.command, body.stdin, body.timeout));
      summary('exec', [result.name], result.ok ? [] : [result.name], request);
      return ok(result);
    },
  );

  for (const action of NODE_OS_ACTIONS) {
    const downTimeout = timeout(DEFAULT_DOWN_TIMEOUT_MS / 1000, 'auto: how long a node may stay up after the soft action before the hard one');
    app.post(
      `/nodes/${action}`,
      {
        schema: {
          body: {
            type: 'object',
            properties: { ids: idsSchema, mode: modeSchema, fanout: fanoutSchema, timeout: downTimeout },
            required: ['ids'],
            additionalProperties: false,
          },
        },
        config: {
          summary: `${action === 'reboot' ? 'Reboot' : 'Shut down'} nodes, soft (ssh), hard (power_uri) or soft then hard (streamed as they answer with Accept: application/x-ndjson)`,
          tags,
          data: arrayOf(rebootResult),
          ndjson: ndjsonSchema(rebootResult),
        },
      },
      async (request, reply) => {
        const body = request.body as { ids: string; mode?: RebootMode; fanout?: number; timeout?: number };
        const nodes = await store.selectNodes(body.ids);
        if (nodes.length === 0) throw HttpError.notFound('No nodes found, nothing was done');
        const mode = body.mode ?? 'auto';
        return perNodeAnswer(
          request,
          reply,
          (onResult) => fanOut(nodes, (n) => runReboot(n, action, mode, body.timeout), { fanout: body.fanout ?? DEFAULT_EXEC_FANOUT, limiter, ...(onResult ? { onResult } : {}) }),
          (results) => summary(`${action} ${mode}`, results.map((r) => r.name), results.filter((r) => !r.ok).map((r) => r.name), request),
        );
      },
    );
    app.post(
      `/node/:id/${action}`,
      {
        schema: {
          params: idParams,
          body: { type: 'object', properties: { mode: modeSchema, timeout: downTimeout }, additionalProperties: false },
        },
        config: { summary: `${action === 'reboot' ? 'Reboot' : 'Shut down'} one node (ok: false with the error when it failed)`, tags, data: rebootResult },
      },
      async (request) => {
        const { id } = request.params as { id: string };
        const body = (request.body ?? {}) as { mode?: RebootMode; timeout?: number };
        const node = await store.getNode(id);
        if (!node) throw HttpError.notFound(`no such node: ${id}`);
        const mode = body.mode ?? 'auto';
        const result = await limiter.use(() => runReboot(node, action, mode, body.timeout));
        summary(`${action} ${mode}`, [result.name], result.ok ? [] : [result.name], request);
        return ok(result);
      },
    );
  }
};

// Serial console logs: `GET /node/:id/console/log?lines=N` replays the last lines of the node's log;
// with `follow=1` the answer is a chunked text/plain stream of those lines and then each new one as the
// console-log worker writes it, until the client goes away. `GET /node/:id/console` tells how to attach
// interactively (the appliance's sshd port) and whether the console is logged.
import type { FastifyPluginAsync } from 'fastify';
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import type { JsonSchema } from '../../db/fields.js';
import { consoleLogFile, MAX_REPLAY_LINES, tailLines } from '../../console/log-file.js';
import { CONSOLE_LOG_ATTRIBUTE, isYes } from '../../console/manager.js';
import { storagePaths, type StoragePaths } from '../../../lib/storage-layout.js';
import { ok } from '../envelope.js';
import { HttpError } from '../errors.js';
import { idParams } from '../schemas.js';

export interface ConsoleRouteOptions {
  paths?: StoragePaths;
  /** The appliance's sshd port as admins reach it (CW_SSH_PORT), for interactive consoles. */
  sshPort?: number;
  /** How often a follow looks for new lines (default 250 ms). */
  pollMs?: number;
}

/** Lines replayed unless the caller asks for another number. */
export const DEFAULT_REPLAY_LINES = 100;

const logQuery: JsonSchema = {
  type: 'object',
  properties: {
    lines: { type: 'string', pattern: '^[0-9]{1,6}$', description: `last lines to replay (default ${DEFAULT_REPLAY_LINES}, at most ${MAX_REPLAY_LINES}; 0 with follow: only new lines)` },
    follow: { enum: ['0', '1', 'true', 'false'], description: '1: keep the answer open and stream new lines (text/plain, chunked)' },
  },
  additionalProperties: false,
};

export const consoleRoutes: FastifyPluginAsync<ConsoleRouteOptions> = async (app, options) => {
  const store = app.store;
  const paths = options.paths ?? storagePaths();
  const pollMs = options.pollMs ?? 250;
  const tags = ['nodes'];
  // Open follows end when the server closes, so that a shutdown does not wait for their clients.
  const follows = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const finish of [...follows]) finish();
  });

  const nodeOf = async (id: string) => {
    const node = await store.getNode(id);
    if (!node) throw HttpError.notFound(`no such node: ${id}`);
    return node;
  };

  app.get(
    '/node/:id/console',
    {
      schema: { params: idParams },
      config: {
        summary: 'How to reach a node\'s serial console: the appliance\'s ssh port (cw-appliance console NODE runs there) and whether its console is logged',
        tags,
        data: {
          type: 'object',
          properties: { name: { type: 'string' }, ssh_port: { type: 'integer' }, logged: { type: 'boolean' } },
          required: ['name', 'ssh_port', 'logged'],
        },
      },
    },
    async (request) => {
      const node = await nodeOf((request.params as { id: string }).id);
      const attributes = await store.resolveAttributes(node);
      return ok({ name: node.name, ssh_port: options.sshPort ?? 22, logged: isYes(attributes[CONSOLE_LOG_ATTRIBUTE]?.value) });
    },
  );

  app.get(
    '/node/:id/console/log',
    {
      schema: { params: idParams, querystring: logQuery },
      config: {
        summary: 'Replay the last lines of a node\'s console log (timestamped); follow=1 streams new lines as text/plain until the client disconnects',
        tags,
        data: { type: 'object', properties: { name: { type: 'string' }, lines: { type: 'array', items: { type: 'string' } } }, required: ['name', 'lines'] },
      },
    },
    async (request, reply) => {
      const node = await nodeOf((request.params as { id: string }).id);
      const query = request.query as { lines?: string; follow?: string };
      const count = Math.min(MAX_REPLAY_LINES, query.lines === undefined ? DEFAULT_REPLAY_LINES : Number(query.lines));
      const file = consoleLogFile(paths.consolesDir, node.name);
      const follow = query.follow === '1' || query.follow === 'true';
      if (!follow) return ok({ name: node.name, lines: await tailLines(file, count) });

      // Where the current file ends now: what was replayed; new lines are read from here on.
      const startInfo = await stat(file).catch(() => undefined);
      const replay = count > 0 ? await tailLines(file, count) : [];
      const out = new PassThrough();
      out.write(replay.map((l) => `${l}\n`).join(''));
      let position = startInfo?.size ?? 0;
      let inode = startInfo?.ino;
      let partial = Buffer.alloc(0);
      let closed = false;
      const poll = async (): Promise<void> => {
        const info = await stat(file).catch(() => undefined);
        if (!info) return;
        // Rotated (a new file under the name) or truncated: read the new one from its start.
        if (info.ino !== inode || info.size < position) {
          inode = info.ino;
          position = 0;
          partial = Buffer.alloc(0);
        }
        if (info.size <= position) return;
        const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          const length = Math.min(info.size - position, 1024 * 1024);
          const buf = Buffer.alloc(length);
          const { bytesRead } = await handle.read(buf, 0, length, position);
          position += bytesRead;
          const data = Buffer.concat([partial, buf.subarray(0, bytesRead)]);
          const end = data.lastIndexOf(0x0a) + 1;
          partial = data.subarray(end);
          if (end > 0 && !closed) out.write(data.subarray(0, end));
        } finally {
          await handle.close();
        }
      };
      let busy = false;
      const timer = setInterval(() => {
        if (busy || closed) return;
        busy = true;
        poll()
          .catch(() => undefined)
          .finally(() => {
            busy = false;
          });
      }, pollMs);
      const finish = (): void => {
        if (closed) return;
        closed = true;
        follows.delete(finish);
        clearInterval(timer);
        out.end();
      };
      request.raw.on('close', finish);
      reply.raw.on('close', finish);
      follows.add(finish);
      reply.header('content-type', 'text/plain; charset=utf-8');
      reply.header('cache-control', 'no-store');
      reply.header('x-accel-buffering', 'no');
      return reply.send(out);
    },
  );
};

import type { FastifyInstance } from 'fastify';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';

export interface ListenOptions {
  /** Group (name or numeric id) given access to the socket, e.g. the httpd workers' group. */
  group?: string;
}

/**
 * Binds `app` to a unix socket: creates its directory, removes a stale socket left by a crash (but refuses
 * to steal one a live process answers on), listens, and makes the socket 0660.
 */
export async function listenOnSocket(app: FastifyInstance, socketPath: string, options: ListenOptions = {}): Promise<void> {
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  await removeStaleSocket(socketPath);
  await app.listen({ path: socketPath });
  chmodSync(socketPath, 0o660);
  if (options.group) chownSync(socketPath, -1, groupId(options.group));
}

async function removeStaleSocket(socketPath: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(socketPath).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) throw new Error(`${socketPath} exists and is not a socket; not removing it`);
  if (await socketAnswers(socketPath)) throw new Error(`another process is already listening on ${socketPath}`);
  unlinkSync(socketPath);
}

function socketAnswers(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    const done = (answers: boolean): void => {
      socket.destroy();
      resolve(answers);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    // A listener too busy to accept is still alive.
    socket.setTimeout(timeoutMs, () => done(true));
  });
}

function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new Error(`unknown group "${group}"`);
}

/** Resolves with the first SIGTERM or SIGINT; later signals get Node's default handling (immediate exit). */
export function shutdownSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(signal);
    };
    process.once('SIGTERM', on);
    process.once('SIGINT', on);
  });
}

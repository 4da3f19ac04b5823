import { chmod, lstat, unlink } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { errorMessage } from '../../lib/errors.js';
import { UnknownServiceError } from './supervisor.js';
import type { HealthReport, ServiceHealth } from './types.js';

/** What the control socket needs from the supervisor. */
export interface ControlTarget {
  health(): HealthReport;
  reload(name: string): Promise<ServiceHealth>;
}

export interface ControlResponse {
  status: number;
  body: unknown;
}

const SERVICE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * Routes one control request; in-process and socket-free so it can be tested directly.
 * `GET /health` → 200 healthy, 503 otherwise; `POST /reload/NAME` → 200 with the service's state.
 */
export async function handleControl(target: ControlTarget, method: string, url: string): Promise<ControlResponse> {
  const path = url.split('?')[0] ?? '';
  if (path === '/health') {
    if (method !== 'GET' && method !== 'HEAD') return { status: 405, body: { error: 'use GET' } };
    const report = target.health();
    return { status: report.status === 'healthy' ? 200 : 503, body: report };
  }
  const reload = /^\/reload\/([^/]+)$/.exec(path);
  if (reload) {
    if (method !== 'POST') return { status: 405, body: { error: 'use POST' } };
    const name = decodeURIComponent(reload[1] ?? '');
    if (!SERVICE_NAME.test(name)) return { status: 400, body: { error: 'invalid service name' } };
    try {
      const service = await target.reload(name);
      return { status: 200, body: { service: name, ...service } };
    } catch (err) {
      if (err instanceof UnknownServiceError) return { status: 404, body: { error: err.message } };
      return { status: 409, body: { error: errorMessage(err) } };
    }
  }
  return { status: 404, body: { error: `no such endpoint ${path}` } };
}

/** Serves `handleControl` over HTTP on a unix socket (mode 0600); a stale socket file is replaced. */
export async function serveControl(target: ControlTarget, socketPath: string): Promise<http.Server> {
  await removeStaleSocket(socketPath);
  const server = http.createServer((req, res) => {
    handleControl(target, req.method ?? 'GET', req.url ?? '/')
      .catch((err: unknown): ControlResponse => ({ status: 500, body: { error: errorMessage(err) } }))
      .then(({ status, body }) => {
        const text = `${JSON.stringify(body)}\n`;
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(socketPath, 0o600);
  return server;
}

/** Closes the server and removes its socket file; open keep-alive connections are cut. */
export async function closeControl(server: http.Server, socketPath: string): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await unlink(socketPath).catch(() => undefined);
}

/**
 * Unlinks a unix socket file nobody listens on any more (left by a previous run). Refuses when a live
 * process still answers on it (a datagram socket answers EPROTOTYPE) or when the path is not a socket.
 */
export async function removeStaleSocket(socketPath: string): Promise<void> {
  const stat = await lstat(socketPath).catch(() => null);
  if (!stat) return;
  if (!stat.isSocket()) throw new Error(`${socketPath} exists and is not a socket`);
  const problem = await new Promise<string | null>((resolve) => {
    const socket = net.connect({ path: socketPath });
    socket.once('connect', () => {
      socket.destroy();
      resolve('a process is listening on it');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? null : `${err.code ?? err.message}`));
  });
  if (problem) throw new Error(`${socketPath} is in use (${problem})`);
  await unlink(socketPath).catch(() => undefined);
}

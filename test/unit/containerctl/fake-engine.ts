// A tiny stand-in for a container engine's HTTP API on a unix socket: enough for cw-containerctl to
// ping it, identify it and decide whether to refuse it. Unit tests import startFakeEngine; shell-level
// tests can run it directly:
//   npx tsx test/unit/containerctl/fake-engine.ts --socket /tmp/x.sock --rootless [--podman]
// prints `DOCKER_HOST=unix:///tmp/x.sock` once listening and serves until SIGTERM/SIGINT.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export type FakeRoute = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

export interface FakeEngineOptions {
  /** Socket path; default: a new temporary directory's `engine.sock`. */
  socketPath?: string;
  /** Which engine `/version` claims to be. */
  kind?: 'docker' | 'podman';
  /** Report rootless in `/info` (`SecurityOptions: name=rootless`, and libpod's `host.security.rootless`). */
  rootless?: boolean;
  /** Replace or add routes, keyed `METHOD /path` (API version prefixes like `/v1.41` are stripped first). */
  routes?: Record<string, FakeRoute>;
}

export interface FakeEngine {
  socketPath: string;
  /** `unix://SOCKET`, ready for DOCKER_HOST. */
  dockerHost: string;
  /** Every request seen, in order (`query` is the raw search string, e.g. `?t=10`). */
  requests: { method: string; path: string; query: string }[];
  close(): Promise<void>;
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function versionReply(kind: 'docker' | 'podman'): Record<string, unknown> {
  if (kind === 'podman') {
    return {
      Platform: { Name: 'linux/amd64/debian-12' },
      Components: [{ Name: 'Podman Engine', Version: '4.3.1', Details: { APIVersion: '4.3.1' } }],
      Version: '4.3.1',
      ApiVersion: '1.41',
      MinAPIVersion: '1.24',
      Os: 'linux',
      Arch: 'amd64',
    };
  }
  return {
    Platform: { Name: 'Docker Engine - Community' },
    Components: [{ Name: 'Engine', Version: '20.10.24', Details: { ApiVersion: '1.41' } }],
    Version: '20.10.24',
    ApiVersion: '1.41',
    MinAPIVersion: '1.12',
    Os: 'linux',
    Arch: 'amd64',
  };
}

export function infoReply(kind: 'docker' | 'podman', rootless: boolean): Record<string, unknown> {
  const security = ['name=seccomp,profile=default', ...(rootless ? ['name=rootless'] : [])];
  return {
    ID: 'fake',
    Name: `fake-${kind}`,
    OperatingSystem: 'Debian GNU/Linux 12 (bookworm)',
    SecurityOptions: security,
    ...(kind === 'podman' ? { host: { security: { rootless } } } : {}),
  };
}

/** Starts the fake engine; close() stops it and removes a socket directory it created. */
export async function startFakeEngine(options: FakeEngineOptions = {}): Promise<FakeEngine> {
  const kind = options.kind ?? 'docker';
  const rootless = options.rootless ?? false;
  const ownDir = options.socketPath ? undefined : mkdtempSync(join(tmpdir(), 'cw-fake-engine-'));
  const socketPath = options.socketPath ?? join(ownDir!, 'engine.sock');
  const requests: { method: string; path: string; query: string }[] = [];
  const routes: Record<string, FakeRoute> = {
    'GET /_ping': (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Api-Version': '1.41' });
      res.end('OK');
    },
    'HEAD /_ping': (_req, res) => {
      res.writeHead(200, { 'Api-Version': '1.41' });
      res.end();
    },
    'GET /version': (_req, res) => json(res, 200, versionReply(kind)),
    'GET /info': (_req, res) => json(res, 200, infoReply(kind, rootless)),
    'GET /images/json': (_req, res) => json(res, 200, []),
    'GET /containers/json': (_req, res) => json(res, 200, []),
    ...options.routes,
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://engine');
      const path = url.pathname.replace(/^\/v\d+(\.\d+)?(?=\/)/, '');
      requests.push({ method: req.method ?? 'GET', path, query: url.search });
      const route = routes[`${req.method} ${path}`];
      if (route) route(req, res, Buffer.concat(chunks));
      else json(res, 404, { message: `page not found: ${req.method} ${path}` });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    socketPath,
    dockerHost: `unix://${socketPath}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          if (ownDir) rmSync(ownDir, { recursive: true, force: true });
          else rmSync(socketPath, { force: true });
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

async function main(argv: string[]): Promise<void> {
  const socketIndex = argv.indexOf('--socket');
  const socketPath = socketIndex >= 0 ? argv[socketIndex + 1] : undefined;
  const engine = await startFakeEngine({
    ...(socketPath ? { socketPath } : {}),
    kind: argv.includes('--podman') ? 'podman' : 'docker',
    rootless: argv.includes('--rootless'),
  });
  process.stdout.write(`DOCKER_HOST=${engine.dockerHost}\n`);
  const stop = () => void engine.close();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}

import test from 'ava';
import { createServer, type RequestListener, type Server } from 'node:http';
import { join } from 'node:path';
import {
  getSupervisorHealth,
  parseHealthReport,
  supervisorHealthClient,
  SupervisorError,
} from '../../../src/appliance/api/supervisor-client.js';
import { tempDir } from '../lib/keys.js';
import { fatalReport, healthyReport } from './helpers.js';

async function fakeSupervisor(t: { teardown(fn: () => unknown): void }, handler: RequestListener): Promise<string> {
  const { dir, cleanup } = tempDir('cw-sup-');
  const socketPath = join(dir, 'supervisor.sock');
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    cleanup();
  });
  return socketPath;
}

const answer = (status: number, body: unknown): RequestListener => (req, res) => {
  if (req.method !== 'GET' || req.url !== '/health') {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
};

test('a healthy supervisor (200) is reported as is', async (t) => {
  const socket = await fakeSupervisor(t, answer(200, healthyReport));
  t.deepEqual(await supervisorHealthClient(socket)(), healthyReport);
});

test('an unhealthy supervisor (503) still yields its report', async (t) => {
  const socket = await fakeSupervisor(t, answer(503, fatalReport));
  t.deepEqual(await getSupervisorHealth(socket), fatalReport);
});

test('a missing socket is a SupervisorError naming the socket', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const socket = join(dir, 'absent.sock');
  await t.throwsAsync(getSupervisorHealth(socket), { instanceOf: SupervisorError, message: `supervisor not reachable at ${socket}: ENOENT` });
});

test('a supervisor that does not answer in time is a SupervisorError', async (t) => {
  const socket = await fakeSupervisor(t, () => {
    // never answers
  });
  await t.throwsAsync(getSupervisorHealth(socket, 100), { instanceOf: SupervisorError, message: /did not answer within 100 ms/ });
});

test('unexpected answers are SupervisorErrors', async (t) => {
  for (const [status, body, message] of [
    [200, 'not json', /not JSON/],
    [200, { status: 'healthy' }, /want \{status, services\}/],
    [200, { status: 'healthy', services: { api: 'up' } }, /service "api"/],
    [500, healthyReport, /HTTP 500/],
  ] as const) {
    const socket = await fakeSupervisor(t, answer(status, body));
    await t.throwsAsync(getSupervisorHealth(socket), { instanceOf: SupervisorError, message });
  }
});

test('an unrecognized status becomes "unknown"', (t) => {
  t.is(parseHealthReport({ status: 'sleepy', services: {} }).status, 'unknown');
});

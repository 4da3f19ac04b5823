import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { listenOnSocket } from '../../../src/appliance/api/server.js';
import { storagePaths } from '../../../src/lib/storage-layout.js';
import { tempDir } from '../lib/keys.js';
import { apiWithTempStore, healthyReport } from './helpers.js';

/** GET over a unix socket: status and parsed JSON body. */
function getJson(socketPath: string, path: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

function setup(t: { teardown(fn: () => unknown): void }) {
  const { dir, cleanup } = tempDir('cw-api-');
  const { api } = apiWithTempStore({ supervisorHealth: async () => healthyReport });
  t.teardown(async () => {
    await api.close();
    cleanup();
  });
  return { api, socketPath: join(dir, 'run', 'api.sock') };
}

test('the API answers on a 0660 unix socket, creating its directory', async (t) => {
  const { api, socketPath } = setup(t);
  await listenOnSocket(api, socketPath);
  t.is(statSync(socketPath).mode & 0o777, 0o660);
  const res = await getJson(socketPath, '/api/v1/version');
  t.is(res.status, 200);
  t.is(res.body.data.name, 'cw-headnode');
  await api.close();
  t.false(existsSync(socketPath), 'closing removes the socket');
});

test('a stale socket left by a crashed process is replaced', async (t) => {
  const { api, socketPath } = setup(t);
  execFileSync('mkdir', ['-p', join(socketPath, '..')]);
  // A bound but never listening socket file, as a killed process leaves behind.
  execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socketPath]);
  t.true(statSync(socketPath).isSocket());
  await listenOnSocket(api, socketPath);
  t.is((await getJson(socketPath, '/api/v1/version')).status, 200);
});

test('a socket another process is serving on is not stolen', async (t) => {
  const { api, socketPath } = setup(t);
  execFileSync('mkdir', ['-p', join(socketPath, '..')]);
  const other = createServer((c) => c.end());
  await new Promise<void>((resolve) => other.listen(socketPath, resolve));
  t.teardown(() => new Promise<void>((resolve) => other.close(() => resolve())));
  await t.throwsAsync(listenOnSocket(api, socketPath), { message: /another process is already listening/ });
});

test('a regular file in place of the socket is not removed', async (t) => {
  const { api, socketPath } = setup(t);
  execFileSync('mkdir', ['-p', join(socketPath, '..')]);
  writeFileSync(socketPath, 'data');
  await t.throwsAsync(listenOnSocket(api, socketPath), { message: /exists and is not a socket/ });
  t.true(statSync(socketPath).isFile());
});

test('api/main.ts serves on CW_API_SOCKET and stops on SIGTERM', async (t) => {
  const { dir, cleanup } = tempDir('cw-api-main-');
  t.teardown(cleanup);
  const socketPath = join(dir, 'api.sock');
  const storage = storagePaths(join(dir, 'storage'));
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('../../../src/appliance/api/main.ts', import.meta.url).pathname], {
    env: {
      ...process.env,
      CW_STORAGE: storage.root,
      CW_API_SOCKET: socketPath,
      CW_SUPERVISOR_SOCKET: join(dir, 'no-supervisor.sock'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  for (let i = 0; i < 200 && !output.includes('listening'); i++) await new Promise((r) => setTimeout(r, 50));
  t.true(output.includes(`CW API listening on ${socketPath}`), output);

  t.is((await getJson(socketPath, '/api/v1/version')).status, 200);
  const health = await getJson(socketPath, '/api/v1/health');
  t.is(health.status, 503);
  t.is(health.body.data.status, 'unknown');
  t.is(statSync(storage.dbFile).mode & 0o777, 0o600);
  t.is(statSync(storage.dbPasswordFile).mode & 0o777, 0o600);

  const started = Date.now();
  child.kill('SIGTERM');
  t.is(await exited, 0, output);
  t.true(Date.now() - started < 3000);
  t.false(existsSync(socketPath));
  t.true(output.includes('SIGTERM: closing the CW API'));
});

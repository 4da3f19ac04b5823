import test from 'ava';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { querySupervisor, supervisorSocketPath } from '../../../src/appliance/supervisor/client.js';
import { closeControl, serveControl } from '../../../src/appliance/supervisor/control.js';
import { Supervisor } from '../../../src/appliance/supervisor/supervisor.js';
import { childSpec, FakeClock, FakeSpawner, flush, MemorySink } from './fakes.js';

test('health and reload over the unix control socket, through querySupervisor', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cw-control-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'supervisor.sock');
  const clock = new FakeClock();
  const spawner = new FakeSpawner(clock);
  const supervisor = new Supervisor([childSpec('dhcpd'), childSpec('sshd')], { clock, spawner, sink: new MemorySink() });

  const server = await serveControl(supervisor, socketPath);
  t.is((await stat(socketPath)).mode & 0o777, 0o600);
  const before = await querySupervisor('/health', 'GET', { socketPath });
  t.is(before.status, 503);
  t.like(before.body, { status: 'starting', services: { dhcpd: { state: 'stopped', pid: null, restarts: 0, lastExit: null } } });

  supervisor.start();
  await flush();
  const healthy = await querySupervisor('/health', 'GET', { socketPath });
  t.is(healthy.status, 200);
  t.like(healthy.body, { status: 'healthy', services: { dhcpd: { state: 'ready', pid: 100 }, sshd: { state: 'ready', pid: 101 } } });
  t.regex((healthy.body as { services: { dhcpd: { since: string } } }).services.dhcpd.since, /^\d{4}-\d\d-\d\dT/);

  const reloaded = await querySupervisor('/reload/dhcpd', 'POST', { socketPath });
  t.is(reloaded.status, 200);
  t.like(reloaded.body, { service: 'dhcpd', state: 'ready', restarts: 1 });
  t.is((await querySupervisor('/reload/nope', 'POST', { socketPath })).status, 404);

  await closeControl(server, socketPath);
  await t.throwsAsync(querySupervisor('/health', 'GET', { socketPath }), { message: `supervisor is not running (cannot connect to ${socketPath})` });
  await supervisor.stopAll();
});

test('a leftover socket file is replaced, a regular file is not', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cw-control-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'supervisor.sock');
  const clock = new FakeClock();
  const supervisor = new Supervisor([], { clock, spawner: new FakeSpawner(clock), sink: new MemorySink() });
  const first = await serveControl(supervisor, socketPath);
  await t.throwsAsync(serveControl(supervisor, socketPath), { message: /in use \(a process is listening on it\)/ });
  // Simulate a crash: the server is gone but its socket file stays.
  await new Promise<void>((resolve) => first.close(() => resolve()));
  await writeFile(path.join(dir, 'marker'), '');
  const second = await serveControl(supervisor, socketPath);
  t.is((await querySupervisor('/health', 'GET', { socketPath })).status, 200);
  await closeControl(second, socketPath);

  const file = path.join(dir, 'plain');
  await writeFile(file, 'data');
  await t.throwsAsync(serveControl(supervisor, file), { message: /exists and is not a socket/ });
});

test('the socket path follows CW_SUPERVISOR_SOCKET, then CW_RUN_DIR', (t) => {
  t.is(supervisorSocketPath({}), '/run/cw/supervisor.sock');
  t.is(supervisorSocketPath({ CW_RUN_DIR: '/tmp/run' }), '/tmp/run/supervisor.sock');
  t.is(supervisorSocketPath({ CW_SUPERVISOR_SOCKET: '/x.sock', CW_RUN_DIR: '/tmp/run' }), '/x.sock');
});

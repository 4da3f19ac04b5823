import test from 'ava';
import { restartDelay } from '../../../src/appliance/supervisor/backoff.js';
import { handleControl } from '../../../src/appliance/supervisor/control.js';
import { dependencyOrder, Supervisor } from '../../../src/appliance/supervisor/supervisor.js';
import type { ServiceSpec, WaitFor } from '../../../src/appliance/supervisor/types.js';
import { childSpec, FakeClock, FakeSpawner, flush, MemorySink, POLICY } from './fakes.js';

function setup(specs: ServiceSpec[]) {
  const clock = new FakeClock();
  const spawner = new FakeSpawner(clock);
  const sink = new MemorySink();
  const supervisor = new Supervisor(specs, { clock, spawner, sink, random: () => 0.5 });
  return { clock, spawner, sink, supervisor };
}

test('starts in dependency order, each only after its dependencies are ready', async (t) => {
  const ready = new Set<string>();
  const { clock, spawner, supervisor } = setup([
    childSpec('httpd', { dependsOn: ['api'], ready }),
    childSpec('api', { ready }),
    childSpec('tftpd', { dependsOn: ['syslogish'], ready }),
    childSpec('syslogish', { ready }),
  ]);
  t.deepEqual(supervisor.startOrder, ['api', 'httpd', 'syslogish', 'tftpd']);
  supervisor.start();
  await flush();
  t.deepEqual(spawner.children.map((c) => c.request.name), ['api', 'syslogish']);
  t.is(supervisor.state('httpd'), 'waiting');
  t.is(supervisor.health().services.httpd?.detail, 'waiting for api');

  await clock.advance(1000);
  t.deepEqual(spawner.of('httpd'), [], 'httpd waits while api is not ready');
  t.is(supervisor.health().status, 'starting');

  ready.add('api');
  await clock.advance(100);
  t.is(supervisor.state('api'), 'ready');
  t.is(spawner.of('httpd').length, 1);
  t.is(spawner.of('tftpd').length, 0);

  ready.add('syslogish').add('httpd');
  await clock.advance(200);
  ready.add('tftpd');
  await clock.advance(200);
  t.is(supervisor.health().status, 'healthy');
  t.true(Object.values(supervisor.health().services).every((s) => s.state === 'ready'));
});

test('dependency cycles and unknown dependencies are refused', (t) => {
  t.throws(() => dependencyOrder([{ name: 'a', dependsOn: ['b'] }, { name: 'b', dependsOn: ['a'] }]), { message: /cycle: a -> b -> a/ });
  const clock = new FakeClock();
  t.throws(() => new Supervisor([childSpec('a', { dependsOn: ['nope'] })], { clock, spawner: new FakeSpawner(clock), sink: new MemorySink() }), {
    message: /unknown service "nope"/,
  });
});

test('a service that never gets ready within its timeout is stopped and counted as a failure', async (t) => {
  const ready = new Set<string>();
  const { clock, spawner, supervisor, sink } = setup([childSpec('dhcpd', { ready })]);
  supervisor.start();
  await clock.advance(4900);
  t.is(supervisor.state('dhcpd'), 'starting');
  await clock.advance(200);
  const first = spawner.last('dhcpd');
  t.deepEqual(first.signals[0]?.signal, 'SIGTERM');
  t.is(supervisor.state('dhcpd'), 'backoff');
  t.is(sink.matching(/dhcpd not ready after 5s; stopping it/).length, 1);
  await clock.advance(200);
  t.is(spawner.of('dhcpd').length, 2, 'restarted after the backoff');
});

test('restart delays grow exponentially up to the cap and jitter stays within bounds', (t) => {
  const mid = () => 0.5;
  t.deepEqual(
    [0, 1, 2, 3, 4, 5, 10].map((n) => restartDelay(POLICY, n, mid)),
    [200, 400, 800, 1600, 1600, 1600, 1600],
  );
  const jittery = { ...POLICY, jitter: 0.2 };
  t.is(restartDelay(jittery, 0, () => 0), 160);
  t.is(restartDelay(jittery, 0, () => 0.999999), 240);
  t.is(restartDelay(jittery, 10, () => 0.999999), 1600, 'never above the cap');
  t.is(restartDelay(jittery, 10, () => 0), 1280);
});

test('crashes restart with growing delays, reset after a long enough run', async (t) => {
  const { clock, spawner, supervisor } = setup([childSpec('tftpd', { restart: { ...POLICY, maxFailures: 100 } })]);
  supervisor.start();
  await flush();
  for (let i = 0; i < 5; i++) {
    spawner.last('tftpd').exit({ code: 1, signal: null });
    await clock.advance(2000);
  }
  t.deepEqual(spawner.gaps('tftpd'), [200, 400, 800, 1600, 1600]);

  // Runs longer than resetAfterMs: the next restart is quick again.
  await clock.advance(10_000);
  spawner.last('tftpd').exit({ code: null, signal: 'SIGKILL' });
  await clock.advance(5000);
  const gaps = spawner.gaps('tftpd');
  t.is(gaps[gaps.length - 1], 200);
  t.is(supervisor.health().services.tftpd?.restarts, 6);
  t.deepEqual(supervisor.health().services.tftpd?.lastExit?.signal, 'SIGKILL');
});

test('too many failures within the window end FATAL: no more restarts, health unhealthy (503)', async (t) => {
  const { clock, spawner, supervisor, sink } = setup([
    childSpec('api', { restart: { ...POLICY, maxFailures: 3, windowMs: 60_000 } }),
    childSpec('sshd'),
  ]);
  supervisor.start();
  await flush();
  for (let i = 0; i < 4; i++) {
    spawner.last('api').exit({ code: 1, signal: null });
    await clock.advance(5000);
  }
  t.is(supervisor.state('api'), 'fatal');
  t.is(spawner.of('api').length, 4);
  await clock.advance(600_000);
  t.is(spawner.of('api').length, 4, 'no restart after FATAL');
  t.is(sink.matching(/api failed 4 times within 60s; giving up \(FATAL\)/).length, 1);

  const health = supervisor.health();
  t.is(health.status, 'unhealthy');
  t.is(health.services.sshd?.state, 'ready');
  const answer = await handleControl(supervisor, 'GET', '/health');
  t.is(answer.status, 503);
  t.like(answer.body, { status: 'unhealthy', services: { api: { state: 'fatal', restarts: 3 } } });
});

test('failures spread wider than the window never become FATAL', async (t) => {
  const { clock, spawner, supervisor } = setup([childSpec('dhcpd', { restart: { ...POLICY, maxFailures: 2, windowMs: 10_000 } })]);
  supervisor.start();
  await flush();
  for (let i = 0; i < 6; i++) {
    spawner.last('dhcpd').exit({ code: 1, signal: null });
    await clock.advance(11_000);
  }
  t.is(supervisor.state('dhcpd'), 'ready');
  t.is(spawner.of('dhcpd').length, 7);
});

test('a non-essential FATAL service leaves health healthy', async (t) => {
  const { clock, spawner, supervisor } = setup([childSpec('extra', { essential: false, restart: { ...POLICY, maxFailures: 0 } }), childSpec('api')]);
  supervisor.start();
  await flush();
  spawner.last('extra').exit();
  await clock.advance(10);
  t.is(supervisor.state('extra'), 'fatal');
  t.is(supervisor.health().status, 'healthy');
});

test('stop goes in reverse dependency order, SIGKILLs the group after the deadline, and returns as soon as all exited', async (t) => {
  const { clock, spawner, supervisor, sink } = setup([
    childSpec('api'),
    childSpec('httpd', { dependsOn: ['api'], stopDeadlineMs: 2000 }),
    childSpec('sshd'),
  ]);
  spawner.behaviour.set('httpd', { exitsOn: [] });
  supervisor.start();
  await flush();
  t.is(spawner.children.length, 3);
  const began = clock.now();
  let done = false;
  void supervisor.stopAll().then(() => (done = true));
  await flush();
  t.deepEqual(spawner.last('httpd').signals.map((s) => s.signal), ['SIGTERM']);
  t.deepEqual(spawner.last('api').signals, [], 'api waits until httpd is gone');
  t.is(supervisor.state('sshd'), 'stopped', 'independent services stop at once');

  await clock.advance(1999);
  t.false(done);
  await clock.advance(1);
  const httpd = spawner.last('httpd');
  t.deepEqual(
    httpd.signals.map((s) => [s.signal, s.target]),
    [
      ['SIGTERM', 'group'],
      ['SIGKILL', 'group'],
      ['SIGKILL', 'group'],
    ],
  );
  t.is(spawner.last('api').signals[0]?.signal, 'SIGTERM');
  t.true(done, 'finished right after the last exit');
  t.is(clock.now() - began, 2000, 'only the one deadline that was needed elapsed');
  t.truthy(sink.matching(/httpd still running 2s after SIGTERM; sending SIGKILL to its process group/)[0]);
  t.deepEqual(
    Object.values(supervisor.health().services).map((s) => s.state),
    ['stopped', 'stopped', 'stopped'],
  );
});

test('stop returns immediately when the children exit on SIGTERM', async (t) => {
  const { clock, supervisor, spawner } = setup([childSpec('a'), childSpec('b', { dependsOn: ['a'] }), childSpec('c', { dependsOn: ['b'] })]);
  supervisor.start();
  await flush();
  const began = clock.now();
  await supervisor.stopAll();
  t.is(clock.now(), began);
  const order = spawner.children.map((c) => [c.request.name, c.signals[0]?.signal]);
  t.deepEqual(order, [
    ['a', 'SIGTERM'],
    ['b', 'SIGTERM'],
    ['c', 'SIGTERM'],
  ]);
  t.is(clock.pending, 0, 'no timers left behind');
});

test('a crash during shutdown is not restarted, and backoff timers are cancelled', async (t) => {
  const { clock, spawner, supervisor } = setup([childSpec('dhcpd'), childSpec('sshd')]);
  supervisor.start();
  await flush();
  spawner.last('dhcpd').exit();
  await flush();
  t.is(supervisor.state('dhcpd'), 'backoff');
  await supervisor.stopAll();
  await clock.advance(60_000);
  t.is(spawner.of('dhcpd').length, 1);
  t.is(supervisor.state('dhcpd'), 'stopped');
});

test('every child line reaches the sink under the service name', async (t) => {
  const { spawner, supervisor, sink } = setup([childSpec('dhcpd')]);
  supervisor.start();
  await flush();
  spawner.last('dhcpd').print('DHCPDISCOVER from 52:54:00:12:34:56 via eth1', 'stderr');
  t.true(sink.lines.includes('[dhcpd] DHCPDISCOVER from 52:54:00:12:34:56 via eth1'));
  t.truthy(sink.matching(/^\[supervisor\] dhcpd started \(pid \d+\): \/usr\/sbin\/dhcpd -f$/)[0]);
});

test('a precondition that is not met parks the service in waiting, logged once, rechecked, and counted healthy', async (t) => {
  let iface = false;
  let prepares = 0;
  const { clock, spawner, supervisor, sink } = setup([
    childSpec('dhcpd', {
      waitRecheckMs: 10_000,
      prepare: async (): Promise<void | WaitFor> => {
        prepares += 1;
        if (!iface) return { wait: 'no cluster network interface' };
      },
    }),
  ]);
  supervisor.start();
  await flush();
  t.is(supervisor.state('dhcpd'), 'waiting');
  await clock.advance(35_000);
  t.is(prepares, 4);
  t.deepEqual(sink.matching(/^\[dhcpd\]/), ['[dhcpd] no cluster network interface; waiting']);
  t.is(spawner.children.length, 0, 'not a crash loop');
  t.is(supervisor.health().status, 'healthy');
  t.is(supervisor.health().services.dhcpd?.detail, 'no cluster network interface');

  iface = true;
  await clock.advance(10_000);
  t.is(supervisor.state('dhcpd'), 'ready');
  t.is(spawner.children.length, 1);
});

test('reload: signal to the main process for nginx, restart (not a failure) for dhcpd, fresh start after FATAL', async (t) => {
  let renders = 0;
  const { clock, spawner, supervisor } = setup([
    childSpec('httpd', { reload: { kind: 'signal', signal: 'SIGHUP' }, prepare: async () => void renders++ }),
    childSpec('dhcpd', { prepare: async () => void renders++ }),
    childSpec('api', { restart: { ...POLICY, maxFailures: 0 } }),
  ]);
  supervisor.start();
  await flush();
  t.is(renders, 2);

  await supervisor.reload('httpd');
  t.is(renders, 3, 're-rendered');
  t.deepEqual(spawner.last('httpd').signals, [{ signal: 'SIGHUP', target: 'main', at: clock.now() }]);
  t.is(spawner.of('httpd').length, 1);

  const before = spawner.last('dhcpd');
  const after = await supervisor.reload('dhcpd');
  t.is(renders, 4);
  t.is(before.signals[0]?.signal, 'SIGTERM');
  t.is(spawner.of('dhcpd').length, 2);
  t.is(after.state, 'ready');
  t.is(after.restarts, 1);
  await clock.advance(60_000);
  t.is(spawner.of('dhcpd').length, 2, 'the reload exit did not trigger a crash restart');

  spawner.last('api').exit();
  await flush();
  t.is(supervisor.state('api'), 'fatal');
  const answer = await handleControl(supervisor, 'POST', '/reload/api');
  t.is(answer.status, 200);
  t.is(supervisor.state('api'), 'ready');
  t.is(spawner.of('api').length, 2);
});

test('a reload whose render fails leaves the running daemon alone', async (t) => {
  let broken = false;
  const { spawner, supervisor } = setup([
    childSpec('dhcpd', {
      prepare: async () => {
        if (broken) throw new Error('dhcpd.conf.template:3: unknown placeholder {{subnet}}');
      },
    }),
  ]);
  supervisor.start();
  await flush();
  broken = true;
  const answer = await handleControl(supervisor, 'POST', '/reload/dhcpd');
  t.is(answer.status, 409);
  t.like(answer.body, { error: 'dhcpd.conf.template:3: unknown placeholder {{subnet}}' });
  t.deepEqual(spawner.last('dhcpd').signals, []);
  t.is(supervisor.state('dhcpd'), 'ready');
});

test('control socket routes: 404 for unknown service or path, 405 for wrong method', async (t) => {
  const { supervisor } = setup([childSpec('api')]);
  t.is((await handleControl(supervisor, 'POST', '/reload/nope')).status, 404);
  t.is((await handleControl(supervisor, 'GET', '/reload/api')).status, 405);
  t.is((await handleControl(supervisor, 'POST', '/health')).status, 405);
  t.is((await handleControl(supervisor, 'GET', '/nothing')).status, 404);
  t.is((await handleControl(supervisor, 'POST', '/reload/..%2Fetc')).status, 400);
  const starting = await handleControl(supervisor, 'GET', '/health');
  t.is(starting.status, 503);
  t.like(starting.body, { status: 'starting' });
});

test('an internal service is ready once started, FATAL when it cannot start, and stopped last', async (t) => {
  const events: string[] = [];
  const { spawner, supervisor } = setup([
    { kind: 'internal', name: 'syslog', dependsOn: [], essential: true, start: async () => void events.push('start'), stop: async () => void events.push('stop') },
    childSpec('tftpd', { dependsOn: ['syslog'] }),
  ]);
  supervisor.start();
  await flush();
  t.is(supervisor.state('syslog'), 'ready');
  t.is(spawner.of('tftpd').length, 1);
  await supervisor.stopAll();
  t.deepEqual(events, ['start', 'stop']);
  t.is(spawner.last('tftpd').signals[0]?.signal, 'SIGTERM');

  const failing = setup([{ kind: 'internal', name: 'syslog', dependsOn: [], essential: true, start: () => Promise.reject(new Error('EADDRINUSE')), stop: async () => undefined }]);
  failing.supervisor.start();
  await flush();
  t.is(failing.supervisor.state('syslog'), 'fatal');
  t.is(failing.supervisor.health().status, 'unhealthy');
});

test('a child that cannot be spawned at all counts as a failure', async (t) => {
  const { clock, spawner, supervisor, sink } = setup([childSpec('tftpd', { restart: { ...POLICY, maxFailures: 1 } })]);
  supervisor.start();
  await flush();
  spawner.last('tftpd').exit({ code: null, signal: null, error: 'spawn /usr/sbin/in.tftpd ENOENT' });
  await clock.advance(1000);
  spawner.last('tftpd').exit({ code: null, signal: null, error: 'spawn /usr/sbin/in.tftpd ENOENT' });
  await flush();
  t.is(supervisor.state('tftpd'), 'fatal');
  t.truthy(sink.matching(/tftpd could not be started \(spawn \/usr\/sbin\/in.tftpd ENOENT\)/)[0]);
});

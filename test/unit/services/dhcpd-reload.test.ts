import test from 'ava';
import { handleControl } from '../../../src/appliance/supervisor/control.js';
import { Supervisor } from '../../../src/appliance/supervisor/supervisor.js';
import { childSpec, FakeClock, FakeSpawner, flush, MemorySink } from '../supervisor/fakes.js';

/** A dhcpd-like service whose render can be held open, to pile requests up behind it. */
function gatedService() {
  let renders = 0;
  let gate: Promise<void> | null = null;
  let open: () => void = () => undefined;
  const spec = childSpec('dhcpd', {
    prepare: async () => {
      renders += 1;
      if (gate) await gate;
    },
  });
  return {
    spec,
    renders: () => renders,
    hold(): void {
      gate = new Promise((resolve) => (open = resolve));
    },
    release(): void {
      gate = null;
      open();
    },
  };
}

test('a burst of reloads coalesces: one in flight, one pending, every caller answered after its change', async (t) => {
  const service = gatedService();
  const clock = new FakeClock();
  const spawner = new FakeSpawner(clock);
  const supervisor = new Supervisor([service.spec], { clock, spawner, sink: new MemorySink() });
  supervisor.start();
  await flush();
  t.is(service.renders(), 1);

  service.hold();
  const first = supervisor.reload('dhcpd');
  await flush();
  t.is(service.renders(), 2, 'the first reload is rendering');
  const burst = Array.from({ length: 50 }, () => handleControl(supervisor, 'POST', '/reload/dhcpd'));
  await flush();
  t.is(service.renders(), 2, 'the burst waits behind the reload in flight');

  service.release();
  const answers = await Promise.all([first, ...burst]);
  t.is(service.renders(), 3, '51 requests, 2 reloads');
  t.is(spawner.of('dhcpd').length, 3, 'initial start + 2 restarts');
  t.true(answers.slice(1).every((a) => 'status' in a && a.status === 200));

  // A request that arrives while the pending reload is already rendering gets a reload of its own.
  service.hold();
  const a = supervisor.reload('dhcpd');
  await flush();
  const b = supervisor.reload('dhcpd');
  await flush();
  t.is(service.renders(), 4);
  service.release();
  await Promise.all([a, b]);
  t.is(service.renders(), 5);
  const c = supervisor.reload('dhcpd');
  t.not(c, b);
  await c;
  t.is(service.renders(), 6);
});

test('a failed render is reported to every caller that joined it, and the next request starts afresh', async (t) => {
  let fail = false;
  const spec = childSpec('dhcpd', {
    prepare: async () => {
      if (fail) throw new Error('dhcpd.conf.template:1: unknown placeholder {{subnet}}');
    },
  });
  const clock = new FakeClock();
  const supervisor = new Supervisor([spec], { clock, spawner: new FakeSpawner(clock), sink: new MemorySink() });
  supervisor.start();
  await flush();
  fail = true;
  const results = await Promise.allSettled([supervisor.reload('dhcpd'), supervisor.reload('dhcpd'), supervisor.reload('dhcpd')]);
  t.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
  fail = false;
  t.is((await supervisor.reload('dhcpd')).state, 'ready');
});

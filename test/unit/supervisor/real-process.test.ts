import test from 'ava';
import { readFile } from 'node:fs/promises';
import { realClock, realSpawner } from '../../../src/appliance/supervisor/spawner.js';
import { Supervisor } from '../../../src/appliance/supervisor/supervisor.js';
import type { ChildServiceSpec } from '../../../src/appliance/supervisor/types.js';
import { MemorySink } from './fakes.js';

/** Alive and not a zombie waiting to be reaped. */
async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  return stat !== null && !/^\d+ \(.*\) Z /.test(stat);
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// A shell that ignores SIGTERM (like a daemon stuck in shutdown) with a grandchild in its group.
const STUBBORN = `trap '' TERM; sleep 300 & echo "grandchild $!"; printf 'crlf line\\r\\npartial'; wait`;

function shellService(name: string, script: string): ChildServiceSpec {
  return {
    kind: 'child',
    name,
    dependsOn: [],
    essential: true,
    command: () => ({ command: '/bin/sh', args: ['-c', script], env: { PATH: process.env.PATH } }),
    restart: { initialDelayMs: 50, maxDelayMs: 200, factor: 2, jitter: 0, resetAfterMs: 10_000, maxFailures: 5, windowMs: 60_000 },
    reload: { kind: 'restart' },
    stopDeadlineMs: 300,
  };
}

test('real children: lines prefixed, group killed on crash and on stop, restart after kill -9', async (t) => {
  const sink = new MemorySink();
  const supervisor = new Supervisor([shellService('stubborn', STUBBORN)], { clock: realClock, spawner: realSpawner, sink });
  t.teardown(() => supervisor.stopAll());
  const grandchildren = (): number[] => sink.matching(/^\[stubborn\] grandchild \d+$/).map((l) => Number(l.split(' ').pop()));

  supervisor.start();
  await waitFor('first grandchild', () => grandchildren().length === 1);
  const first = supervisor.health().services.stubborn;
  const firstPid = first?.pid as number;
  t.is(first?.state, 'ready');
  t.true(await running(grandchildren()[0] as number));
  await waitFor('crlf line', () => sink.lines.includes('[stubborn] crlf line'));

  // kill -9 of the leader: the grandchild goes with its group, and the service comes back.
  process.kill(firstPid, 'SIGKILL');
  await waitFor('restart', () => grandchildren().length === 2);
  await waitFor('old grandchild gone', async () => !(await running(grandchildren()[0] as number)));
  const second = supervisor.health().services.stubborn;
  t.not(second?.pid, firstPid);
  t.is(second?.restarts, 1);
  t.is(second?.lastExit?.signal, 'SIGKILL');
  t.true(sink.lines.includes('[stubborn] partial'), 'the unterminated last line was flushed');

  // Stop: SIGTERM is ignored, so after the 300 ms deadline the whole group gets SIGKILL.
  const began = Date.now();
  await supervisor.stopAll();
  const took = Date.now() - began;
  t.true(took >= 250 && took < 2000, `stop took ${took} ms`);
  t.false(await running(second?.pid as number));
  await waitFor('second grandchild gone', async () => !(await running(grandchildren()[1] as number)));
  t.truthy(sink.matching(/stubborn still running 0\.3s after SIGTERM; sending SIGKILL/)[0]);
});

test('real children: stop returns as soon as a cooperative child exits', async (t) => {
  const sink = new MemorySink();
  const supervisor = new Supervisor([shellService('polite', 'exec sleep 300')], { clock: realClock, spawner: realSpawner, sink });
  supervisor.start();
  await waitFor('ready', () => supervisor.state('polite') === 'ready');
  const began = Date.now();
  await supervisor.stopAll();
  t.true(Date.now() - began < 250);
  t.is(supervisor.state('polite'), 'stopped');
});

test('real children: a missing binary is a failure, not a crash of the supervisor', async (t) => {
  const sink = new MemorySink();
  const spec: ChildServiceSpec = { ...shellService('ghost', ''), command: () => ({ command: '/nonexistent/daemon', args: [] }) };
  const supervisor = new Supervisor([{ ...spec, restart: { ...spec.restart, maxFailures: 1 } }], { clock: realClock, spawner: realSpawner, sink });
  supervisor.start();
  await waitFor('fatal', () => supervisor.state('ghost') === 'fatal');
  t.truthy(sink.matching(/ghost could not be started \(spawn \/nonexistent\/daemon ENOENT\)/)[0]);
  await supervisor.stopAll();
});

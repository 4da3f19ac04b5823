// rebootNode's choices: soft, hard, and soft-then-hard, with fake ssh, power and clock.
import test from 'ava';
import type { ExecResult } from '../../../src/appliance/exec/run.js';
import { rebootNode, softAccepted, type RebootDeps } from '../../../src/appliance/exec/reboot.js';

function world(opts: { up?: boolean; ssh?: Partial<ExecResult>; downAfterMs?: number; powerOk?: boolean }) {
  let clock = 0;
  const calls: string[] = [];
  const deps: RebootDeps = {
    exec: async (words) => {
      calls.push(`ssh ${words.join(' ')}`);
      return { name: 'n3', ok: true, exit_code: 0, stdout: '', stderr: '', ...opts.ssh };
    },
    power: async (action) => {
      calls.push(`power ${action}`);
      return opts.powerOk === false ? { name: 'n3', ok: false, error: 'no power_uri' } : { name: 'n3', ok: true, result: action };
    },
    isUp: async () => opts.up ?? true,
    wentDown: async () => opts.downAfterMs !== undefined && clock >= opts.downAfterMs,
    sleep: async (ms) => {
      clock += ms;
    },
    now: () => clock,
  };
  return { deps, calls };
}

test('--soft runs /usr/sbin/reboot or shutdown -h now over ssh and nothing else', async (t) => {
  const w = world({});
  t.deepEqual(await rebootNode('n3', 'reboot', 'soft', 60_000, w.deps), { name: 'n3', ok: true, result: 'soft' });
  t.deepEqual(await rebootNode('n3', 'shutdown', 'soft', 60_000, w.deps), { name: 'n3', ok: true, result: 'soft' });
  t.deepEqual(w.calls, ['ssh /usr/sbin/reboot', 'ssh /usr/sbin/shutdown -h now']);
  const refused = world({ ssh: { ok: false, exit_code: 255, error: 'ssh: Connection refused', stderr: 'Connection refused' } });
  t.deepEqual(await rebootNode('n3', 'reboot', 'soft', 60_000, refused.deps), { name: 'n3', ok: false, error: 'soft reboot: ssh: Connection refused' });
  t.deepEqual(refused.calls, ['ssh /usr/sbin/reboot']);
});

test('--hard is the power reset or off', async (t) => {
  const w = world({});
  t.deepEqual(await rebootNode('n3', 'reboot', 'hard', 60_000, w.deps), { name: 'n3', ok: true, result: 'hard' });
  t.deepEqual(await rebootNode('n3', 'shutdown', 'hard', 60_000, w.deps), { name: 'n3', ok: true, result: 'hard' });
  t.deepEqual(w.calls, ['power reset', 'power off']);
});

test('no flag: soft when up and it goes down in time; hard when not up, when ssh fails, or when still up at the deadline', async (t) => {
  const goesDown = world({ downAfterMs: 5000 });
  t.deepEqual(await rebootNode('n3', 'reboot', 'auto', 60_000, goesDown.deps), { name: 'n3', ok: true, result: 'soft' });
  t.deepEqual(goesDown.calls, ['ssh /usr/sbin/reboot']);

  const notUp = world({ up: false });
  t.deepEqual(await rebootNode('n3', 'reboot', 'auto', 60_000, notUp.deps), { name: 'n3', ok: true, result: 'hard', note: 'not up' });
  t.deepEqual(notUp.calls, ['power reset']);

  const noSsh = world({ ssh: { ok: false, exit_code: 255, error: 'ssh: Connection refused' } });
  t.deepEqual(await rebootNode('n3', 'shutdown', 'auto', 60_000, noSsh.deps), {
    name: 'n3',
    ok: true,
    result: 'hard',
    note: 'soft shutdown: ssh: Connection refused',
  });
  t.deepEqual(noSsh.calls, ['ssh /usr/sbin/shutdown -h now', 'power off']);

  const stuck = world({});
  t.deepEqual(await rebootNode('n3', 'reboot', 'auto', 10_000, stuck.deps), { name: 'n3', ok: true, result: 'hard', note: 'still up 10 s after the soft reboot' });
  t.deepEqual(stuck.calls, ['ssh /usr/sbin/reboot', 'power reset']);

  const stuckNoPower = world({ powerOk: false });
  t.deepEqual(await rebootNode('n3', 'reboot', 'auto', 2000, stuckNoPower.deps), {
    name: 'n3',
    ok: false,
    error: 'still up 2 s after the soft reboot; hard reboot (power reset): no power_uri',
  });
});

test('a connection the rebooting node drops counts as a given soft command; other ssh failures do not', (t) => {
  const r = (exit: number, stderr: string): ExecResult => ({ name: 'n', ok: exit === 0, exit_code: exit, stdout: '', stderr });
  t.true(softAccepted(r(0, '')));
  t.true(softAccepted(r(255, 'Connection to 10.0.0.3 closed by remote host.\n')));
  t.false(softAccepted(r(255, 'ssh: connect to host 10.0.0.3 port 22: Connection refused')));
  t.false(softAccepted(r(1, 'reboot: not permitted')));
});

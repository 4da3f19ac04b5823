// The console log worker with a fake clock and a fake `sol activate`: what reaches the log, when it
// reconnects, what it says (once per change), and how it yields to an interactive session.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleLog } from '../../../src/appliance/console/log-file.js';
import { ConsoleManager, isYes } from '../../../src/appliance/console/manager.js';
import { ConsoleWorker, CONSOLE_BACKOFF, type SolProcess } from '../../../src/appliance/console/worker.js';
import type { Command, CommandRunner } from '../../../src/appliance/power/command.js';
import { parsePowerTarget, type IpmiTarget } from '../../../src/appliance/power/uri.js';
import { FakeClock } from '../supervisor/fakes.js';

const SECRET = 'pa$$ w0rd';
const target = parsePowerTarget(`ipmi:///admin:${encodeURIComponent(SECRET)}@10.1.15.7:6230`).target as IpmiTarget;

class FakeSol implements SolProcess {
  data: Array<(c: Buffer) => void> = [];
  exits: Array<(code: number | null, stderr: string) => void> = [];
  killed = false;
  constructor(readonly command: Command) {}
  onData(l: (c: Buffer) => void) {
    this.data.push(l);
  }
  onExit(l: (code: number | null, stderr: string) => void) {
    this.exits.push(l);
  }
  kill() {
    this.killed = true;
    this.exit(null, '');
  }
  send(text: string) {
    for (const l of this.data) l(Buffer.from(text));
  }
  exit(code: number | null, stderr: string) {
    const ls = this.exits;
    this.exits = [];
    for (const l of ls) l(code, stderr);
  }
}

function setup(t: { teardown: (fn: () => void) => void }, options: { held?: () => boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'cw-console-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const clock = new FakeClock();
  const spawned: FakeSol[] = [];
  const ran: Command[] = [];
  const said: string[] = [];
  const run: CommandRunner = async (command) => {
    ran.push(command);
    return { exitCode: 0, stdout: '', stderr: '' };
  };
  const file = join(dir, 'n0.log');
  const worker = new ConsoleWorker({
    node: 'n0',
    target,
    log: new ConsoleLog(file),
    spawn: (command) => {
      const p = new FakeSol(command);
      spawned.push(p);
      return p;
    },
    run,
    say: (line) => said.push(line),
    clock,
    random: () => 0.5,
    ...options,
  });
  return { worker, clock, spawned, ran, said, file, dir, run };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

test('lines from the serial port are stamped with the time they arrived; ipmitool banners are not kept', async (t) => {
  const { worker, clock, spawned, file } = setup(t);
  worker.start();
  t.is(spawned.length, 1);
  const sol = spawned[0] as FakeSol;
  t.is(sol.command.file, 'stdbuf');
  t.deepEqual(sol.command.args.slice(0, 2), ['-o0', 'ipmitool']);
  t.deepEqual(sol.command.args.slice(-3), ['-E', 'sol', 'activate']);
  t.deepEqual(sol.command.env, { IPMI_PASSWORD: SECRET });
  t.false(sol.command.args.join(' ').includes(SECRET));
  sol.send('[SOL Session operational.  Use ~? for help]\r\n');
  sol.send('Booting ');
  await clock.advance(1500);
  sol.send('Linux\r\nlogin: ');
  await worker.stop();
  const stamp = (ms: number) => new Date(ms).toISOString();
  t.is(readFileSync(file, 'utf8'), `${stamp(1_001_500)} Booting Linux\n${stamp(1_001_500)} login: \n`);
});

test('refusals back off exponentially with jitter up to the cap, said once', async (t) => {
  const { worker, clock, spawned, said } = setup(t);
  worker.start();
  const delays: number[] = [];
  let last = clock.now();
  for (let i = 0; i < 12; i++) {
    (spawned[spawned.length - 1] as FakeSol).exit(1, 'tcgetattr: Inappropriate ioctl for device\nError: Unable to establish IPMI v2 / RMCP+ session\n');
    const before = spawned.length;
    while (spawned.length === before) await clock.advance(100);
    delays.push(clock.now() - last);
    last = clock.now();
  }
  // random() = 0.5 means no jitter: 1, 2, 4 ... s, then the 5 min cap (to the 100 ms step of the loop).
  t.deepEqual(delays.slice(0, 5), [1000, 2000, 4000, 8000, 16000]);
  t.true(delays.every((d) => d <= CONSOLE_BACKOFF.maxDelayMs + 100));
  t.is(delays[delays.length - 1], CONSOLE_BACKOFF.maxDelayMs);
  t.is(said.length, 1);
  t.regex(said[0] as string, /^console n0: BMC 10\.1\.15\.7: Unable to establish IPMI v2.*reconnecting with backoff \(at most every 300 s\)$/);
  t.false(said.join('\n').includes(SECRET));
  await worker.stop();
});

test('jitter spreads the delay by up to ±20 % and never above the cap', (t) => {
  const lo = new ConsoleWorker({ node: 'n0', target, log: new ConsoleLog('/nonexistent'), spawn: () => new FakeSol({ file: '', args: [] }), run: async () => ({ exitCode: 0, stdout: '', stderr: '' }), random: () => 0 });
  const hi = new ConsoleWorker({ node: 'n0', target, log: new ConsoleLog('/nonexistent'), spawn: () => new FakeSol({ file: '', args: [] }), run: async () => ({ exitCode: 0, stdout: '', stderr: '' }), random: () => 0.9999 });
  t.is(lo.delayFor(0), 800);
  t.is(hi.delayFor(0), 1200);
  t.is(hi.delayFor(20), 300_000);
  t.is(lo.delayFor(20), 240_000);
});

test('a dropped session that had lasted reconnects after the first delay again, and says connected once', async (t) => {
  const { worker, clock, spawned, said } = setup(t);
  worker.start();
  for (let i = 0; i < 3; i++) {
    (spawned[spawned.length - 1] as FakeSol).exit(1, 'Error: no response\n');
    const n = spawned.length;
    while (spawned.length === n) await clock.advance(100);
  }
  await clock.advance(120_000); // connected for two minutes
  (spawned[spawned.length - 1] as FakeSol).exit(0, '');
  const n = spawned.length;
  const from = clock.now();
  while (spawned.length === n) await clock.advance(100);
  t.is(clock.now() - from, 1000);
  t.deepEqual(
    said.map((l) => /reconnecting with backoff|logging the serial console of BMC 10.1.15.7/.exec(l)?.[0]),
    ['reconnecting with backoff', 'logging the serial console of BMC 10.1.15.7', 'reconnecting with backoff'],
  );
  await worker.stop();
});

test('a stale session is deactivated, then activated again at once', async (t) => {
  const { worker, spawned, ran, said } = setup(t);
  worker.start();
  (spawned[0] as FakeSol).exit(1, 'Info: SOL payload already active on another session\n');
  await settle();
  t.is(ran.length, 1);
  t.deepEqual(ran[0]?.args.slice(-2), ['sol', 'deactivate']);
  t.deepEqual(ran[0]?.env, { IPMI_PASSWORD: SECRET });
  t.is(spawned.length, 2);
  // Still busy: no second deactivate in a row, back off instead.
  (spawned[1] as FakeSol).exit(1, 'Info: SOL payload already active on another session\n');
  await settle();
  t.is(ran.length, 1);
  t.is(worker.state, 'backoff');
  t.regex(said.join('\n'), /stale SOL session/);
  await worker.stop();
});

test('an interactive session holds the console: the worker waits, then resumes at once', async (t) => {
  let held = false;
  const { worker, clock, spawned, said, ran } = setup(t, { held: () => held });
  worker.start();
  held = true;
  // The worker notices the hold within a second and ends its own session.
  await clock.advance(1000);
  t.true((spawned[0] as FakeSol).killed);
  await clock.advance(60_000);
  t.is(spawned.length, 1);
  t.is(worker.state, 'held');
  held = false;
  await clock.advance(1000);
  t.is(spawned.length, 2);
  t.is(said.filter((l) => /interactive/.test(l)).length, 1);
  await worker.stop();
  t.is(worker.state, 'stopped');
  t.true((spawned[1] as FakeSol).killed);
  // Stopping also ends the session on the BMC, so that the next client finds it free.
  await settle();
  t.deepEqual(ran.map((c) => c.args.slice(-2).join(' ')), ['sol deactivate']);
});

test('the manager starts, restarts on a changed power_uri, and stops workers', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-console-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const spawned: FakeSol[] = [];
  const manager = new ConsoleManager({
    dir,
    holdDir: join(dir, 'held'),
    run: async () => ({ exitCode: 0, stdout: '', stderr: '' }),
    spawn: (c) => {
      const p = new FakeSol(c);
      spawned.push(p);
      return p;
    },
    clock: new FakeClock(),
  });
  const uri0 = 'ipmi:///admin:a@10.1.15.1';
  const uri1 = 'ipmi:///admin:a@10.1.15.2';
  const want = (node: string, uri: string) => ({ node, uri, target: parsePowerTarget(uri).target as IpmiTarget });
  await manager.reconcile([want('n0', uri0), want('n1', uri0)]);
  t.deepEqual(Object.keys(manager.states()).sort(), ['n0', 'n1']);
  t.is(spawned.length, 2);
  await manager.reconcile([want('n0', uri0), want('n1', uri1)]);
  t.is(spawned.length, 3);
  t.true(spawned[1]?.killed);
  t.false(spawned[0]?.killed);
  t.true(spawned[2]?.command.args.includes('10.1.15.2'));
  await manager.reconcile([want('n1', uri1)]);
  t.true(spawned[0]?.killed);
  t.deepEqual(Object.keys(manager.states()), ['n1']);
  await manager.stopAll();
  t.true(spawned[2]?.killed);
});

test('isYes', (t) => {
  for (const v of ['yes', 'YES', 'true', 'on', '1', ' yes ']) t.true(isYes(v));
  for (const v of ['no', '', undefined, '0', 'off', 'y']) t.false(isYes(v));
});

// The pool of kept-open ssh connections: socket paths that fit a unix socket, the master's and the mux
// client's argv, and the lifecycle (one master per user@ip:port however many ask at once, failures and
// deaths forgotten, LRU cap, idle expiry, close) with a fake ssh.
import test from 'ava';
import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  controlDir,
  controlPath,
  masterArgv,
  masterKey,
  MAX_CONTROL_PATH,
  SshMasters,
  withoutMuxNoise,
  type MasterSpawner,
  type MasterTarget,
} from '../../../src/appliance/exec/masters.js';
import { nodeSshArgv } from '../../../src/appliance/exec/remote.js';
import { execaExecRunner, execNode, type ExecRunner } from '../../../src/appliance/exec/run.js';

const identity = { keyFile: '/var/lib/cw/ssh/id_ed25519', knownHostsFile: '/var/lib/cw/ssh/known_hosts' };
const node = (host: string, port = 22): MasterTarget => ({ host, user: 'root', port });
const never = new AbortController().signal;
const tick = (ms = 30) => new Promise((resolve) => setTimeout(resolve, ms));
/** Waits (up to 5 s) until `check` holds: the pool's first steps touch the file system. */
async function until(check: () => boolean): Promise<void> {
  for (const started = Date.now(); !check(); await tick(5)) if (Date.now() - started > 5000) throw new Error('timed out');
}

test('control socket paths: a 16-digit hash of user@ip:port, short enough for a unix socket with ssh\'s temporary suffix', (t) => {
  t.is(masterKey(node('10.0.0.3')), 'root@10.0.0.3:22');
  const dir = controlDir('/var/lib/cw/ssh');
  t.is(dir, '/var/lib/cw/ssh/mux');
  const a = controlPath(dir as string, 'root@10.0.0.3:22');
  t.regex(a, /^\/var\/lib\/cw\/ssh\/mux\/[0-9a-f]{16}$/);
  t.is(controlPath(dir as string, 'root@10.0.0.3:22'), a);
  t.not(controlPath(dir as string, 'root@10.0.0.4:22'), a);
  t.not(controlPath(dir as string, 'root@10.0.0.3:2222'), a);
  // The longest accepted directory still leaves room for `PATH.` + 16 characters within sun_path.
  const longest = `/${'d'.repeat(MAX_CONTROL_PATH - '/mux/'.length - 16 - 1)}`;
  const path = controlPath(controlDir(longest) as string, 'k');
  t.is(path.length, MAX_CONTROL_PATH);
  t.true(path.length + 17 <= 107);
  t.is(controlDir(`${longest}d`), undefined);
  // What ssh's option parser would split or expand is not used either.
  t.is(controlDir('/srv/cw storage/ssh'), undefined);
  t.is(controlDir('/srv/"cw"/ssh'), undefined);
});

test('the master runs in the foreground without a command, with keepalives and the appliance\'s usual options', (t) => {
  const args = masterArgv(node('10.0.0.3', 2222), identity, 10, '/var/lib/cw/ssh/mux/0123456789abcdef');
  t.deepEqual(args.slice(-6), ['-l', 'root', '-p', '2222', '--', '10.0.0.3']);
  for (const o of ['ControlPath=/var/lib/cw/ssh/mux/0123456789abcdef', 'ControlPersist=no', 'ServerAliveInterval=5', 'ServerAliveCountMax=3', 'StrictHostKeyChecking=accept-new', 'BatchMode=yes', 'ConnectTimeout=10']) {
    t.true(args.includes(o), o);
  }
  t.true(args.includes('-M') && args.includes('-N'));
  t.is(args[args.indexOf('-i') + 1], identity.keyFile);
  t.true(masterArgv(node('10.0.0.3'), identity, 1, '/x%y/s').includes('ControlPath=/x%%y/s'));
});

test('a mux client never becomes a master and names the socket before the destination', (t) => {
  const args = nodeSshArgv({ name: 'n3', ip: '10.0.0.3' }, ['uname', '-r'], identity, 5, '/var/lib/cw/ssh/mux/0123456789abcdef');
  const dashes = args.indexOf('--');
  t.true(args.indexOf('ControlMaster=no') < dashes);
  t.true(args.indexOf('ControlPath=/var/lib/cw/ssh/mux/0123456789abcdef') < dashes);
  t.deepEqual(args.slice(dashes), ['--', '10.0.0.3', 'uname -r']);
  t.false(nodeSshArgv({ name: 'n3', ip: '10.0.0.3' }, ['true'], identity, 5).some((a) => a.startsWith('Control')));
});

test('the mux client\'s leading lines about its master are dropped, the command\'s stderr kept', (t) => {
  t.is(withoutMuxNoise('mux_client_request_session: read from master failed: Broken pipe\noops\n'), 'oops\n');
  t.is(withoutMuxNoise('Control socket connect(/var/lib/cw/ssh/mux/ab): Connection refused\n'), '');
  t.is(withoutMuxNoise('oops\nmux_client_request_session: not me\n'), 'oops\nmux_client_request_session: not me\n');
  t.is(withoutMuxNoise(''), '');
});

/** A fake ssh: each master is ready when the test says so, and exits writing its complaint to the log. */
async function pool(t: { teardown(fn: () => Promise<void>): void }, options: { max?: number; idleMs?: number; now?: () => number } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'cw-masters-'));
  const mux = join(dir, 'mux');
  const ready = new Set<string>();
  const spawned: { args: readonly string[]; path: string; kills: string[]; exit(complaint?: string): Promise<void> }[] = [];
  const spawn: MasterSpawner = (args, logFile) => {
    let done!: () => void;
    const exited = new Promise<void>((resolve) => (done = resolve));
    const path = String(args.find((a) => a.startsWith('ControlPath='))).slice('ControlPath='.length);
    const p = {
      args,
      path,
      kills: [] as string[],
      exit: async (complaint = '') => {
        if (complaint) await appendFile(logFile, complaint);
        ready.delete(path);
        done();
      },
    };
    spawned.push(p);
    return {
      exited,
      kill: (signal = 'SIGTERM') => {
        p.kills.push(signal);
        void p.exit();
      },
    };
  };
  const masters = new SshMasters({
    dir: mux,
    identity,
    spawn,
    isSocket: async (path) => ready.has(path),
    ...(options.max === undefined ? {} : { maxMasters: options.max }),
    ...(options.idleMs === undefined ? {} : { idleMs: options.idleMs }),
    ...(options.now ? { now: options.now } : {}),
  });
  t.teardown(async () => {
    await masters.close();
    await rm(dir, { recursive: true, force: true });
  });
  const makeReady = async (i: number) => {
    await until(() => spawned.length > i);
    ready.add(spawned[i]!.path);
  };
  const spawnedCount = (n: number) => until(() => spawned.length >= n);
  return { masters, spawned, makeReady, spawnedCount, mux };
}

test('concurrent first calls to one node share one master; the next call reuses it', async (t) => {
  const { masters, spawned, makeReady, spawnedCount } = await pool(t);
  const leases = Promise.all([1, 2, 3].map(() => masters.acquire(node('10.0.0.3'), 10, never)));
  await spawnedCount(1);
  t.is(spawned.length, 1);
  await makeReady(0);
  const got = await leases;
  t.deepEqual(
    got.map((l) => l.kind),
    ['mux', 'mux', 'mux'],
  );
  for (const l of got) if (l.kind === 'mux') l.release();
  const again = await masters.acquire(node('10.0.0.3'), 10, never);
  t.is(again.kind, 'mux');
  t.is(spawned.length, 1);
  // Another port, another address: other masters.
  const other = masters.acquire(node('10.0.0.3', 2222), 10, never);
  const moved = masters.acquire(node('10.0.0.9'), 10, never);
  await spawnedCount(3);
  t.is(spawned.length, 3);
  await makeReady(1);
  await makeReady(2);
  t.is((await other).kind, 'mux');
  t.is((await moved).kind, 'mux');
  t.is(masters.size, 3);
});

test('a master that cannot connect answers every waiter with ssh\'s complaint and is not kept; the next call tries again', async (t) => {
  const { masters, spawned, spawnedCount, mux } = await pool(t);
  const leases = Promise.all([1, 2].map(() => masters.acquire(node('10.0.0.7'), 10, never)));
  await spawnedCount(1);
  await spawned[0]!.exit('ssh: connect to host 10.0.0.7 port 22: Connection refused\r\n');
  for (const l of await leases) t.deepEqual(l, { kind: 'failed', complaint: 'ssh: connect to host 10.0.0.7 port 22: Connection refused\r\n' });
  t.is(masters.size, 0);
  for (let i = 0; i < 100 && (await readdir(mux)).length > 0; i++) await tick(10);
  t.deepEqual(await readdir(mux), [], 'log and socket removed');
  void masters.acquire(node('10.0.0.7'), 10, never);
  await spawnedCount(2);
  t.is(spawned.length, 2);
});

test('a caller whose deadline passes while the master connects gets a timeout; the master lives on for the next', async (t) => {
  const { masters, spawned, makeReady, spawnedCount } = await pool(t);
  t.is((await masters.acquire(node('10.0.0.3'), 10, AbortSignal.timeout(20))).kind, 'timeout');
  await makeReady(0);
  t.is((await masters.acquire(node('10.0.0.3'), 10, never)).kind, 'mux');
  t.is(spawned.length, 1);
});

test('a master that ends (connection dropped) is forgotten: its complaint is told, the next call gets a new one', async (t) => {
  const { masters, spawned, makeReady, spawnedCount } = await pool(t);
  const first = masters.acquire(node('10.0.0.3'), 10, never);
  await tick();
  await makeReady(0);
  const lease = await first;
  if (lease.kind !== 'mux') return t.fail(lease.kind);
  await spawned[0]!.exit('Connection to 10.0.0.3 closed by remote host.\r\n');
  t.is(await lease.masterComplaint(), 'Connection to 10.0.0.3 closed by remote host.\r\n');
  lease.release();
  t.is(masters.size, 0);
  const next = masters.acquire(node('10.0.0.3'), 10, never);
  await spawnedCount(2);
  t.is(spawned.length, 2);
  await makeReady(1);
  t.is((await next).kind, 'mux');
});

test('at most maxMasters: the least recently used idle one makes room; with all busy the call connects itself', async (t) => {
  const { masters, spawned, makeReady, spawnedCount } = await pool(t, { max: 2 });
  const use = async (host: string, i?: number) => {
    const p = masters.acquire(node(host), 10, never);
    await tick();
    if (i !== undefined) await makeReady(i);
    return p;
  };
  const a = await use('10.0.0.1', 0);
  const b = await use('10.0.0.2', 1);
  if (a.kind !== 'mux' || b.kind !== 'mux') return t.fail();
  t.is((await use('10.0.0.3')).kind, 'direct', 'both busy');
  t.is(spawned.length, 2);
  a.release();
  b.release();
  const a2 = await use('10.0.0.1');
  if (a2.kind !== 'mux') return t.fail();
  a2.release();
  // 10.0.0.2 is now the least recently used.
  const c = await use('10.0.0.3', 2);
  t.is(c.kind, 'mux');
  t.deepEqual(spawned[1]!.kills, ['SIGTERM']);
  t.deepEqual(spawned[0]!.kills, []);
  t.is(masters.size, 2);
});

test('idle masters end after the idle time; busy ones stay', async (t) => {
  let now = 0;
  const { masters, spawned, makeReady, spawnedCount } = await pool(t, { idleMs: 600_000, now: () => now });
  // One after the other, so that spawned[0] is 10.0.0.1's master whatever the file system's timing.
  const a = masters.acquire(node('10.0.0.1'), 10, never);
  await makeReady(0);
  const la = await a;
  const b = masters.acquire(node('10.0.0.2'), 10, never);
  await makeReady(1);
  const lb = await b;
  if (la.kind !== 'mux' || lb.kind !== 'mux') return t.fail();
  la.release();
  now = 599_999;
  masters.sweep();
  t.is(masters.size, 2);
  now = 600_000;
  masters.sweep();
  t.deepEqual(spawned[0]!.kills, ['SIGTERM']);
  t.deepEqual(spawned[1]!.kills, [], 'in use');
  t.is(masters.size, 1);
});

test('forget ends a node\'s master (it is going down); close ends all and later calls connect themselves', async (t) => {
  const { masters, spawned, makeReady, spawnedCount } = await pool(t);
  // One after the other, so that spawned[0] is 10.0.0.1's master whatever the file system's timing.
  const a = masters.acquire(node('10.0.0.1'), 10, never);
  await makeReady(0);
  await a;
  const b = masters.acquire(node('10.0.0.2'), 10, never);
  await makeReady(1);
  await b;
  masters.forget(node('10.0.0.1'));
  t.deepEqual(spawned[0]!.kills, ['SIGTERM']);
  t.is(masters.size, 1);
  await masters.close();
  t.deepEqual(spawned[1]!.kills, ['SIGTERM']);
  t.is(masters.size, 0);
  t.is((await masters.acquire(node('10.0.0.1'), 10, never)).kind, 'direct');
});

test('without a usable directory nothing is kept open', async (t) => {
  const masters = new SshMasters({ dir: undefined, identity, spawn: () => t.fail() as never });
  t.is((await masters.acquire(node('10.0.0.1'), 10, never)).kind, 'direct');
});

test('execNode runs a mux client over the master; a dropped connection is said as the master says it', async (t) => {
  const { masters, makeReady, spawned } = await pool(t);
  const calls: string[][] = [];
  let answer = { exitCode: 0, stdout: 'n3\n', stderr: 'mux_client_request_session: read from master failed: Broken pipe\n' };
  const run: ExecRunner = async (_file, args) => {
    calls.push([...args]);
    return { ...answer, canceled: false, notFound: false };
  };
  const pending = execNode({ name: 'n3', ip: '10.0.0.3' }, ['hostname'], { identity, masters, run, timeoutMs: 5000 });
  await tick();
  await makeReady(0);
  t.deepEqual(await pending, { name: 'n3', ok: true, exit_code: 0, stdout: 'n3\n', stderr: '' });
  t.true(calls[0]!.includes('ControlMaster=no'));
  // reboot: the node closes the connection; the client says nothing, its master does.
  answer = { exitCode: 255, stdout: '', stderr: '' };
  const dropped = execNode({ name: 'n3', ip: '10.0.0.3' }, ['/usr/sbin/reboot'], { identity, masters, run, timeoutMs: 5000 });
  void spawned[0]!.exit('Connection to 10.0.0.3 closed by remote host.\r\n');
  t.like(await dropped, { ok: false, exit_code: 255, error: 'ssh: Connection to 10.0.0.3 closed by remote host.' });
});

test('at the deadline the runner answers once ssh has exited, although another process (a master) still holds its output pipes', async (t) => {
  // sh stands for the mux client, the background sleep for the master keeping stdout and stderr open.
  const started = Date.now();
  const r = await execaExecRunner('sh', ['-c', 'sleep 3 & wait'], { signal: AbortSignal.timeout(300), maxBuffer: 1024 });
  t.true(r.canceled);
  t.true(Date.now() - started < 2500, `${Date.now() - started} ms`);
});

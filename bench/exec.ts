// exec figures: `exec true` on 200 real sshd targets, each in its own network namespace on a bridge,
// through the code the API runs (src/appliance/exec/run.ts with its kept-open connections, masters.ts):
// cold (the first exec after the host keys are known: a master is made per node) and warm (the next
// execs reuse them), beside one ssh per node as before (no masters) and a plain sequential `ssh` loop
// with the same arguments as baselines (no pdsh here; GNU parallel is used too when it is installed).
// The appliance's HTTP and nginx add one request, not one per node.
// Usage: sudo npx tsx bench/exec.ts   (root; needs ip, sshd, ssh, ssh-keygen)
//   CW_BENCH_TARGETS (default 200), CW_BENCH_FANOUT (default 64, the API's default).
//   Bridge cwbx0 with 10.214.0.1/16, namespaces cwbx0..cwbx199 at 10.214.x.y: all removed at the end,
//   also on failure.
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { portClosed } from '../src/appliance/exec/reboot.js';
import { nodeSshArgv } from '../src/appliance/exec/remote.js';
import { controlDir, SshMasters } from '../src/appliance/exec/masters.js';
import { execNode, fanOut } from '../src/appliance/exec/run.js';
import { ensureSshKey } from '../src/appliance/power/ssh.js';
import { writeTestSshd } from '../test/helpers/sshd.js';

const TARGETS = Number(process.env.CW_BENCH_TARGETS ?? 200);
const FANOUT = Number(process.env.CW_BENCH_FANOUT ?? 64);
const BRIDGE = 'cwbx0';
const dir = mkdtempSync(join(tmpdir(), 'cw-bench-exec-'));
const identity = { keyFile: join(dir, 'id_ed25519'), knownHostsFile: join(dir, 'known_hosts') };
const ns = (i: number) => `cwbx${i}`;
const veth = (i: number) => `vcwbx${i}`;
const addr = (i: number) => `10.214.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
const targets = Array.from({ length: TARGETS }, (_, i) => ({ name: `n${i}`, ip: addr(i) }));
const sshds: ResultPromise[] = [];
let masters: SshMasters | undefined;

const sh = (file: string, args: string[]) => execa(file, args, { reject: false });

async function cleanup(): Promise<void> {
  await masters?.close();
  for (const p of sshds.splice(0)) {
    p.kill('SIGTERM');
    await p.catch(() => {});
  }
  for (let i = 0; i < TARGETS; i++) {
    await sh('ip', ['netns', 'del', ns(i)]);
    await sh('ip', ['link', 'del', veth(i)]);
  }
  await sh('ip', ['link', 'del', BRIDGE]);
}

async function setUp(): Promise<void> {
  await cleanup();
  await execa('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  await execa('ip', ['addr', 'add', '10.214.0.1/16', 'dev', BRIDGE]);
  await execa('ip', ['link', 'set', BRIDGE, 'up']);
  await ensureSshKey(identity);
  await writeTestSshd(dir, readFileSync(`${identity.keyFile}.pub`), ['UseDNS no', 'PidFile none']);
  for (let i = 0; i < TARGETS; i++) {
    await execa('ip', ['netns', 'add', ns(i)]);
    await execa('ip', ['link', 'add', veth(i), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(i)]);
    await execa('ip', ['link', 'set', veth(i), 'master', BRIDGE, 'up']);
    await execa('ip', ['netns', 'exec', ns(i), 'ip', 'link', 'set', 'lo', 'up']);
    await execa('ip', ['netns', 'exec', ns(i), 'ip', 'addr', 'add', `${addr(i)}/16`, 'dev', 'eth0']);
    await execa('ip', ['netns', 'exec', ns(i), 'ip', 'link', 'set', 'eth0', 'up']);
    // An empty /root in a mount namespace of its own, as on a node: root's shell on this machine reads
    // the host's ~/.bashrc for every ssh command (bash does under sshd), which may start dozens of
    // processes (a pyenv init here: ~100 per command) and would be measured instead of exec.
    const script = 'mount -t tmpfs -o mode=0700 cwbench /root && exec /usr/sbin/sshd -D -e -f "$1"';
    sshds.push(execa('ip', ['netns', 'exec', ns(i), 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', join(dir, 'sshd_config')], { reject: false }));
  }
  const deadline = Date.now() + 60_000;
  for (const t of targets) {
    while (await portClosed(t.ip, 22)) {
      if (Date.now() > deadline) throw new Error(`sshd at ${t.ip} did not start`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function timed(what: string, run: () => Promise<number>): Promise<void> {
  const started = Date.now();
  const failed = await run();
  console.log(`${what}: ${((Date.now() - started) / 1000).toFixed(2)} s${failed > 0 ? ` (${failed} of ${TARGETS} failed${firstError ? `, e.g. ${firstError}` : ''})` : ''}`);
  firstError = undefined;
}
let firstError: string | undefined;

const inProcess = (fanout: number, pool?: SshMasters) => async () => {
  const failed = (await fanOut(targets, (t) => execNode(t, ['true'], { identity, timeoutMs: 30_000, ...(pool ? { masters: pool } : {}) }), { fanout })).filter((r) => !r.ok);
  firstError ??= failed[0] && `${failed[0].name}: ${failed[0].error}`;
  return failed.length;
};

const sequential = async () => {
  let failed = 0;
  for (const t of targets) if ((await sh('ssh', nodeSshArgv(t, ['true'], identity, 10))).exitCode !== 0) failed++;
  return failed;
};

const gnuParallel = async () => {
  // One ssh per line of input, 64 at once: the same arguments with the address in place of {}.
  const argv = nodeSshArgv({ name: 'x', ip: '{}' }, ['true'], identity, 10);
  const r = await execa('parallel', ['-j', String(FANOUT), 'ssh', ...argv], { input: `${targets.map((t) => t.ip).join('\n')}\n`, reject: false });
  return r.exitCode ?? TARGETS;
};

try {
  console.log(`${TARGETS} sshd targets in network namespaces, fanout ${FANOUT}; setting up...`);
  await setUp();
  // First contact records the host keys (accept-new): not measured.
  await inProcess(FANOUT)();
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  // The directory as the appliance has it (STORAGE/ssh/mux), here under the bench's temporary directory.
  if (controlDir(dir) === undefined) throw new Error(`${dir}: too long a path for control sockets`);
  // Baselines and cold runs alternate, so that both see the same load on a shared machine.
  for (const fanout of [FANOUT, TARGETS]) {
    await timed(`baseline: one ssh per node (no kept-open connections), fanout ${fanout}`, inProcess(fanout));
    masters = new SshMasters({ dir: controlDir(dir), identity });
    await timed(`exec true, ${TARGETS} targets, kept-open connections, fanout ${fanout}: cold (a master made per node)`, inProcess(fanout, masters));
    for (let run = 1; run <= 3; run++) await timed(`exec true, ${TARGETS} targets, kept-open connections, fanout ${fanout}: warm (run ${run})`, inProcess(fanout, masters));
    console.log(`masters open: ${masters.size}`);
    await masters.close();
    await timed(`baseline: one ssh per node (no kept-open connections), fanout ${fanout}`, inProcess(fanout));
  }
  if ((await sh('parallel', ['--version'])).exitCode === 0) await timed(`baseline: GNU parallel -j ${FANOUT} ssh`, gnuParallel);
  else console.log('baseline: GNU parallel not installed, skipped');
  await timed(`baseline: sequential ssh loop, ${TARGETS} targets`, sequential);
} finally {
  await cleanup();
  rmSync(dir, { recursive: true, force: true });
}

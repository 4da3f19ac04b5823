// exec, reboot and shutdown through the real appliance: its own ssh, with its own key, logs in to real
// sshds, each in a network namespace on the test bridge and in its own UTS namespace (so the real
// `hostname` answers n0, n1, ...) and mount namespace (where /usr/sbin/reboot and /usr/sbin/shutdown,
// symlinks to systemctl here, reach a bind-mounted recorder instead: nothing is ever rebooted). The
// nodes authorize the key the appliance serves to booting nodes at /api/v1/boot/authorized-keys.
// (execa strips the tools' final newline.)
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeTestSshd } from '../helpers/sshd.js';
import { findTool, requireTools } from '../helpers/tools.js';
import { AdminSession, TestHost, sh, startOnTestBridge, tempDir, waitFor } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const execTest = requireTools('ip', 'sshd', 'ssh-keygen', 'unshare', 'curl');
const NET = 'cwex0';
const SUBNET = '10.213.42.0/24';
const HEAD_IP = '10.213.42.10';
const NAME = 'cwit-exec';
const NODES = 8;
const ip = (i: number) => `10.213.42.${100 + i}`;
const hosts = Array.from({ length: NODES }, (_, i) => new TestHost(`cwexn${i}`, NET, `${ip(i)}/24`, `52:54:00:7e:00:${(0x10 + i).toString(16)}`));
const work = tempDir('cwex');
const storage = join(work, 'cw_container_storage');
const home = tempDir('cwex-home');
const admin = new AdminSession(home, `https://${HEAD_IP}/api/v1`);
const nodectl = (args: string[]) => admin.tool('nodectl', args);
const sshds: ResultPromise[] = [];
/** The appliance's public key, as the nodes authorize it. */
let nodeKey = '';

/** Records how it was called (`/usr/sbin/reboot`, `/usr/sbin/shutdown -h now`) in its node's file. */
const RECORDER = `#!/bin/sh
printf '%s\\n' "$0 $*" >> "$CW_TEST_RECORD"
`;

async function cleanup(): Promise<void> {
  // The appliance first: its kept-open connections end. A session that outlived its sshd would keep
  // the sshd's output pipe, and so its process here, open: every process in the namespaces ends too.
  await sh('docker', ['rm', '-f', NAME], { reject: false });
  for (const h of hosts) await h.endProcesses('SIGTERM');
  for (const p of sshds.splice(0)) {
    p.kill('SIGTERM');
    await p.catch(() => {});
  }
  for (const h of hosts) await h.destroy();
  await sh('docker', ['network', 'rm', NET], { reject: false });
  admin.close();
}

/** A real sshd for node i (all but `skip`), root allowed with exactly `key`. */
async function startSshd(i: number, key: string): Promise<void> {
  const dir = join(work, `n${i}`);
  await writeTestSshd(dir, key, [`SetEnv CW_TEST_RECORD=${join(dir, 'record')}`, `PidFile ${join(dir, 'sshd.pid')}`]);
  writeFileSync(join(dir, 'recorder'), RECORDER);
  chmodSync(join(dir, 'recorder'), 0o755);
  // unshare: a private mount namespace (the bind mount is seen by this sshd only) and its own hostname.
  const script = `hostname n${i} && mount --bind "$1/recorder" /usr/sbin/reboot && exec "$2" -D -e -f "$1/sshd_config"`;
  sshds.push(
    execa('ip', ['netns', 'exec', hosts[i]!.ns, 'unshare', '--uts', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', dir, findTool('sshd') ?? '/usr/sbin/sshd'], {
      reject: false,
    }),
  );
}

execTest.before(async () => {
  await cleanup();
  await startOnTestBridge({ name: NAME, net: NET, subnet: SUBNET, headIp: HEAD_IP, storage, admin });
  // The key every booting node fetches (plain HTTP, anonymous), exactly as the initramfs does.
  nodeKey = (await sh('curl', ['-fsS', `http://${HEAD_IP}/api/v1/boot/authorized-keys`])).stdout;
  if (!/^ssh-ed25519 [A-Za-z0-9+/=]+ cw-appliance$/.test(nodeKey.trim())) throw new Error(`not a key: ${nodeKey}`);
  for (const h of hosts) await h.create();
  // n7 has no sshd: the failing target.
  for (let i = 0; i < NODES - 1; i++) await startSshd(i, nodeKey);
  for (let i = 0; i < NODES; i++) {
    const r = await nodectl(['create', `index=${i}`, `ip=${ip(i)}`, `mac=${hosts[i]!.mac}`]);
    if (r.exitCode !== 0) throw new Error(r.all);
  }
  // Every sshd listening before the tests start.
  await waitFor(async () => Array.from({ length: NODES - 1 }, (_, i) => join(work, `n${i}`, 'sshd.pid')).every((f) => existsSync(f)) || undefined, 10_000);
});

test.after.always(async () => {
  await cleanup();
  await sh('rm', ['-rf', work, home], { reject: false });
});

execTest.serial('exec hostname on 7 sshd nodes collated under one range per name; n7 without sshd fails the run and is named last', async (t) => {
  const all = await nodectl(['-i', 'n[0-6]', 'exec', 'hostname']);
  t.is(all.exitCode, 0, all.all);
  t.deepEqual(all.stdout.split('\n').sort(), Array.from({ length: 7 }, (_, i) => `n${i}: n${i}`));

  const same = await nodectl(['-i', 'n[0-6]', '--collate', 'exec', 'uname', '-s']);
  t.is(same.stdout, 'n[0-6]: Linux', same.all);

  const r = await nodectl(['-i', 'n[0-7]', '--collate', '--timeout', '10', 'exec', 'sh', '-c', 'hostname | cut -c1; echo oops >&2']);
  t.not(r.exitCode, 0);
  t.is(r.stdout, 'n[0-6]: n');
  const errLines = r.stderr.split('\n');
  t.is(errLines[0], 'n[0-6]: oops', r.stderr);
  t.regex(errLines[1] ?? '', /^n7: ERROR: ssh: connect to host 10\.213\.42\.107 port 22: (Connection refused|No route to host|Connection timed out)/);
  t.is(errLines.at(-1), 'ERROR: exec failed on 1 of 8 nodes: n7');

  // Hostile words arrive as words: nothing is run by the node's shell.
  const hostile = await nodectl(['-i', 'n0', 'exec', 'echo', '$(touch /tmp/cwex-pwned)', '`id`', 'a;b']);
  t.is(hostile.stdout, 'n0: $(touch /tmp/cwex-pwned) `id` a;b', hostile.all);
  t.false(existsSync('/tmp/cwex-pwned'));
});

execTest.serial('reboot --soft and shutdown --soft run the node\'s /usr/sbin/reboot and shutdown -h now over ssh', async (t) => {
  const reboot = await nodectl(['-i', 'n1', 'reboot', '--soft']);
  t.is(reboot.stdout, 'n1: soft reboot', reboot.all);
  t.is(reboot.exitCode, 0);
  t.is(readFileSync(join(work, 'n1', 'record'), 'utf8'), '/usr/sbin/reboot \n');
  const shutdown = await nodectl(['-i', 'n2', 'shutdown', '--soft']);
  t.is(shutdown.stdout, 'n2: soft shutdown', shutdown.all);
  t.is(readFileSync(join(work, 'n2', 'record'), 'utf8'), '/usr/sbin/shutdown -h now\n');
  // n3 is not `up` (no agent reports) and has no power_uri: no soft try, the hard one fails and says why.
  const auto = await nodectl(['-i', 'n3', 'reboot', '--timeout', '2']);
  t.not(auto.exitCode, 0);
  t.regex(auto.stdout, /^n3: ERROR: not up; hard reboot \(power reset\): no power_uri/);
  t.false(existsSync(join(work, 'n3', 'record')));
});

/** The TCP connections node i's sshd holds (local and peer address and port). */
async function sshConnections(i: number): Promise<string[]> {
  const r = await hosts[i]!.exec(['ss', '-tnH', 'state', 'established', '( sport = :22 )']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/).slice(-2).join(' '))
    .filter((l) => l !== '')
    .sort();
}

execTest.serial('exec reuses one kept-open connection per node; after the node\'s sshd restarts (connection dropped) it connects again', async (t) => {
  const first = await nodectl(['-i', 'n4', 'exec', 'hostname']);
  t.is(first.stdout, 'n4: n4', first.all);
  const before = await sshConnections(4);
  t.is(before.length, 1, before.join('\n'));
  for (let k = 0; k < 3; k++) {
    const r = await nodectl(['-i', 'n4', 'exec', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    t.is(r.stdout, 'n4: out', r.all);
    t.is(r.stderr.split('\n')[0], 'n4: err', r.all);
    t.not(r.exitCode, 0);
  }
  // stdin and a deadline over the kept-open connection; the command stopped at its deadline leaves it usable.
  writeFileSync(join(work, 'job.txt'), 'line one\nline two\n');
  const fed = await nodectl(['-i', 'n4', 'exec', '--stdin', `@${join(work, 'job.txt')}`, 'cat']);
  t.is(fed.stdout, 'n4: line one\nn4: line two', fed.all);
  const slowStarted = Date.now();
  const slow = await nodectl(['-i', 'n4', '--timeout', '2', 'exec', 'sleep', '30']);
  t.true(Date.now() - slowStarted < 15_000, `answered after ${Date.now() - slowStarted} ms, not at its deadline`);
  t.not(slow.exitCode, 0);
  t.regex(slow.all, /n4: ERROR: no answer within 2 s/);
  const quick = await nodectl(['-i', 'n4', 'exec', 'hostname']);
  t.is(quick.stdout, 'n4: n4', quick.all);
  t.deepEqual(await sshConnections(4), before, 'the same connection, no new one');

  // Restart: every process in n4's namespace ends (the listening sshd and the session holding the
  // appliance's connection), then sshd starts again.
  await hosts[4]!.endProcesses('SIGTERM');
  await waitFor(async () => ((await hosts[4]!.pids()).length === 0 ? true : undefined), 10_000);
  await startSshd(4, nodeKey);
  const listening = async () => (await hosts[4]!.exec(['ss', '-tlnH', '( sport = :22 )'])).stdout.trim() !== '';
  await waitFor(async () => ((await listening()) ? true : undefined), 10_000);

  const after = await nodectl(['-i', 'n4', 'exec', 'hostname']);
  t.is(after.exitCode, 0, after.all);
  t.is(after.stdout, 'n4: n4', after.all);
  const now = await sshConnections(4);
  t.is(now.length, 1, now.join('\n'));
  t.notDeepEqual(now, before, 'a new connection');
  const again = await nodectl(['-i', 'n4', 'exec', 'true']);
  t.is(again.exitCode, 0, again.all);
  t.deepEqual(await sshConnections(4), now);
});

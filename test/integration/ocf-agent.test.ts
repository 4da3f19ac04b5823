// The Pacemaker resource agent (packaging/ocf/cw-headnode) on the real appliance image under real
// Docker: installed with `cw-containerctl install-ocf`, checked by Debian's ocf-tester, and its start,
// monitor and stop driven the way Pacemaker drives them (OCF_RESKEY_* environment, exit codes).
import test from 'ava';
import { execa } from 'execa';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { storagePaths } from '../../src/lib/storage-layout.js';
import { requireTools } from '../helpers/tools.js';
import { AdminSession, TestHost, cliPath, ctl, imageTarball, sh, tempDir, waitFor } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const NET = 'cwocf0';
const SUBNET = '10.224.61.0/24';
const HEAD_IP = '10.224.61.10';
const NAME = 'cwit-ocf';
const work = tempDir('cwit-ocf');
// ocf-tester runs `meta-data` as nobody: the agent's directories must be world-readable.
chmodSync(work, 0o755);
const storage = join(work, 'storage');
const providerDir = join(work, 'resource.d', 'cw');
const agent = join(providerDir, 'headnode');
const wrapper = join(work, 'cw-containerctl');
let imageRef = '';

const ocfTest = requireTools('ocf-tester', 'xmllint', 'curl', 'busybox', 'ip');

// The failover layout under host networking: the host's own address and the floating IP that the real
// IPaddr2 agent adds, on one bridge that stands for the cluster network; a node in a namespace on it.
const BRIDGE = 'cwocfh0';
const OWN_CIDR = '10.224.62.1/24';
const FLOATING = '10.224.62.2';
const HOST_NAME = 'cwit-ocf-host';
const NODE_MAC = '52:54:00:7e:62:01';
const node = new TestHost('cwocfn', BRIDGE, '', NODE_MAC);
const hostStorage = join(work, 'host-storage');
const home = join(work, 'home');
const admin = new AdminSession(home, `https://${FLOATING}:18543/api/v1`);
const PODMAN_SOCKET = process.env.CW_PODMAN_SOCKET ?? '/run/podman/podman.sock';
const PODMAN_NAME = 'cwit-ocf-podman';
const podmanStorage = join(work, 'podman-storage');
const IPADDR2 = '/usr/lib/ocf/resource.d/heartbeat/IPaddr2';
const ipaddr2Env = { OCF_ROOT: '/usr/lib/ocf', OCF_RESOURCE_INSTANCE: 'cw-ip', OCF_RESKEY_ip: FLOATING, OCF_RESKEY_cidr_netmask: '24', OCF_RESKEY_nic: BRIDGE };

/** The parameters as Pacemaker would pass them (crm_resource --force-* passes the same). */
function params(): Record<string, string> {
  return {
    engine: 'docker',
    storage,
    image: imageRef,
    name: NAME,
    containerctl: wrapper,
    start_options: `--network ${NET} --ip ${HEAD_IP}`,
  };
}

/** Runs one agent action as Pacemaker does: OCF_ROOT, OCF_RESKEY_*, the operation's timeout in ms. */
async function agentAction(action: string, timeoutMs: number, extra: Record<string, string> = {}) {
  const env: Record<string, string> = { OCF_ROOT: '/usr/lib/ocf', OCF_RESOURCE_INSTANCE: 'headnode', OCF_RESKEY_CRM_meta_timeout: String(timeoutMs) };
  for (const [key, value] of Object.entries({ ...params(), ...extra })) env[`OCF_RESKEY_${key}`] = value;
  const began = Date.now();
  const r = await execa(agent, [action], { env, reject: false, all: true, timeout: timeoutMs + 30_000 });
  return { code: r.exitCode, all: r.all ?? '', ms: Date.now() - began };
}

async function healthOverHttps(): Promise<string> {
  const r = await execa('curl', ['-fsS', '--max-time', '5', '--cacert', storagePaths(storage).tlsCertFile, `https://${HEAD_IP}/api/v1/health`]);
  return (JSON.parse(r.stdout) as { data: { status: string } }).data.status;
}

async function cleanup(): Promise<void> {
  await sh('docker', ['rm', '-f', NAME, HOST_NAME], { reject: false });
  await sh('podman', ['rm', '-f', PODMAN_NAME], { reject: false });
  await sh('docker', ['network', 'rm', NET], { reject: false });
  await execa(IPADDR2, ['stop'], { env: ipaddr2Env, reject: false });
  await node.destroy();
  await sh('ip', ['link', 'del', BRIDGE], { reject: false });
  admin.close();
}

ocfTest.before(async () => {
  await cleanup();
  mkdirSync(storage);
  mkdirSync(hostStorage);
  mkdirSync(podmanStorage);
  mkdirSync(home);
  await sh('docker', ['network', 'create', '--driver', 'bridge', '--subnet', SUBNET, '-o', `com.docker.network.bridge.name=${NET}`, NET]);
  const load = await ctl(['img-load', imageTarball()]);
  if (load.exitCode !== 0) throw new Error(load.all);
  imageRef = /Loaded image: (\S+)/.exec(load.stdout)![1]!;
  // The agent calls cw-containerctl by name or path; this checkout's build stands in for an installed one.
  writeFileSync(wrapper, `#!/bin/sh\nexec '${process.execPath}' '${cliPath}' "$@"\n`, { mode: 0o755 });
});

test.after.always(async () => {
  await cleanup();
  await sh('rm', ['-rf', work], { reject: false });
});

ocfTest.serial('install-ocf puts the agent in the provider directory, mode 0755', async (t) => {
  const r = await ctl(['install-ocf', '--dir', providerDir]);
  t.is(r.exitCode, 0, r.all);
  t.regex(r.stdout, new RegExp(`Installed the resource agent ${agent}`));
  const mode = (await sh('stat', ['-c', '%a', agent])).stdout;
  t.is(mode, '755');
});

ocfTest.serial('ocf-tester passes on the real appliance', async (t) => {
  const options = Object.entries(params()).flatMap(([key, value]) => ['-o', `${key}=${value}`]);
  const r = await execa('ocf-tester', ['-n', 'cw-headnode', ...options, agent], { reject: false, all: true, timeout: 600_000 });
  t.log(r.all?.split('\n').slice(-3).join('\n'));
  t.is(r.exitCode, 0, r.all);
  t.regex(r.all ?? '', /passed all tests/);
  // ocf-tester ends with a stop: nothing left running.
  t.is((await agentAction('monitor', 20_000)).code, 7);
});

ocfTest.serial('start: the appliance answers on its address; start again changes nothing', async (t) => {
  const start = await agentAction('start', 180_000);
  t.is(start.code, 0, start.all);
  t.log(`start took ${start.ms} ms`);
  t.is(await healthOverHttps(), 'healthy');
  const id = (await sh('docker', ['inspect', '--format', '{{.Id}}', NAME])).stdout;
  const again = await agentAction('start', 180_000);
  t.is(again.code, 0, again.all);
  t.is((await sh('docker', ['inspect', '--format', '{{.Id}}', NAME])).stdout, id);
  t.is((await agentAction('monitor', 40_000)).code, 0);
});

ocfTest.serial('monitor: running but unhealthy is 1, killed is 7, also for a probe', async (t) => {
  // The supervisor's socket answers nothing while the supervisor is frozen: running but not healthy.
  const pid = await supervisorPid();
  process.kill(pid, 'SIGSTOP');
  try {
    const frozen = await agentAction('monitor', 40_000, { health_timeout: '3' });
    t.is(frozen.code, 1, frozen.all);
    t.regex(frozen.all, /not healthy/);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  t.is((await agentAction('monitor', 40_000)).code, 0);
  await sh('docker', ['kill', NAME]);
  const killed = await agentAction('monitor', 40_000);
  t.is(killed.code, 7, killed.all);
  const probe = await agentAction('monitor', 40_000, { CRM_meta_interval: '0' });
  t.is(probe.code, 7);
});

ocfTest.serial('stop finishes inside its operation timeout, also when the appliance ignores SIGTERM', async (t) => {
  const start = await agentAction('start', 180_000);
  t.is(start.code, 0, start.all);
  // A frozen supervisor cannot act on SIGTERM: the engine must kill it after the grace the agent chose.
  process.kill(await supervisorPid(), 'SIGSTOP');
  const timeoutMs = 8_000;
  const stop = await agentAction('stop', timeoutMs);
  t.is(stop.code, 0, stop.all);
  t.log(`stop of a frozen appliance with an ${timeoutMs} ms timeout took ${stop.ms} ms`);
  t.true(stop.ms < timeoutMs, `${stop.ms} ms`);
  // The grace is half the timeout: it was waited for, then the engine killed.
  t.true(stop.ms >= timeoutMs / 2 - 500, `${stop.ms} ms`);
  t.is((await agentAction('monitor', 40_000)).code, 7);
  const again = await agentAction('stop', timeoutMs);
  t.is(again.code, 0, again.all);
});

ocfTest.serial('validate-all names what is wrong', async (t) => {
  const noStorage = await agentAction('validate-all', 30_000, { storage: join(work, 'missing') });
  t.is(noStorage.code, 6);
  t.regex(noStorage.all, /storage directory .*missing does not exist/);
  const noImage = await agentAction('validate-all', 30_000, { image: 'cw-headnode:0.0.0-absent' });
  t.is(noImage.code, 5);
  t.regex(noImage.all, /image cw-headnode:0\.0\.0-absent is not loaded in docker/);
  const badEngine = await agentAction('validate-all', 30_000, { engine: 'lxc' });
  t.is(badEngine.code, 6);
  t.regex(badEngine.all, /engine must be docker or podman/);
  t.is((await agentAction('validate-all', 30_000)).code, 0);
});

/** The host PID of the appliance's supervisor (the node process under tini). */
async function supervisorPid(): Promise<number> {
  const top = await sh('docker', ['top', NAME, '-o', 'pid,args']);
  // tini's own line names the same script after `--`: the supervisor's line starts with node.
  const line = top.stdout.split('\n').find((l) => /^\s*\d+\s+node \/opt\/cw\/dist\/appliance\/main\.js/.test(l));
  if (!line) throw new Error(`no supervisor in:\n${top.stdout}`);
  return Number(line.trim().split(/\s+/)[0]);
}

ocfTest.serial('head_address: under host networking nodes are told the floating IP that IPaddr2 added, not the host\'s own', async (t) => {
  await sh('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  await sh('ip', ['addr', 'add', OWN_CIDR, 'dev', BRIDGE]);
  await sh('ip', ['link', 'set', BRIDGE, 'up']);
  await node.create();
  // The group's order: the floating IP first (the real IPaddr2 agent), then the appliance.
  const ip = await execa(IPADDR2, ['start'], { env: ipaddr2Env, reject: false, all: true });
  t.is(ip.exitCode, 0, ip.all);
  const ports = '--http-port 18180 --https-port 18543 --ssh-port 12280 --tftp-port 16979 --dns-port 5399';
  const hostParams = { storage: hostStorage, name: HOST_NAME, head_address: FLOATING, start_options: ports };
  const start = await agentAction('start', 180_000, hostParams);
  t.is(start.code, 0, start.all);
  t.is((await agentAction('monitor', 40_000, hostParams)).code, 0);

  // The admin's tools find the appliance at the floating IP, as tool-config proposes.
  await admin.open();
  const add = await ctl(['add-admin', admin.user, `@${admin.keyFile}.pub`, '--name', HOST_NAME]);
  t.is(add.exitCode, 0, add.all);
  await admin.adopt(HOST_NAME);
  const conf = join(home, 'cluster.conf');
  writeFileSync(conf, `iprange 10.224.62.100/24\nnode ${NODE_MAC}\n`);
  const load = await admin.tool('cluster-conf', ['load', conf]);
  t.is(load.exitCode, 0, load.all);

  // A real DHCP client: its address, and the next-server (siaddr) it is to boot from.
  const script = join(home, 'udhcpc.sh');
  writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "LEASE $ip $siaddr"\nexit 0\n', { mode: 0o755 });
  const { value } = await waitFor(async () => {
    const r = await node.exec(['busybox', 'udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '1', '-T', '1', '-s', script], { reject: false, timeout: 30_000 });
    return /^LEASE (\S+) (\S+)/m.exec(r.stdout) ?? undefined;
  }, 30_000, 200);
  t.is(value[1], '10.224.62.100');
  t.is(value[2], FLOATING);
  const dhcpdConf = readFileSync(join(storagePaths(hostStorage).generatedDir, 'dhcpd.conf'), 'utf8');
  t.regex(dhcpdConf, new RegExp(`next-server ${FLOATING.replaceAll('.', '\\.')};`));
  t.notRegex(dhcpdConf, /10\.224\.62\.1\b/);

  const stop = await agentAction('stop', 40_000, hostParams);
  t.is(stop.code, 0, stop.all);
  t.is((await agentAction('monitor', 40_000, hostParams)).code, 7);
});

ocfTest.serial('ocf-tester passes under Podman too (host networking, high ports)', async (t) => {
  const env = { DOCKER_HOST: `unix://${PODMAN_SOCKET}` };
  const load = await ctl(['--engine', 'podman', 'img-load', imageTarball()], { env });
  t.is(load.exitCode, 0, load.all);
  const podmanImage = /Loaded image: (\S+)/.exec(load.stdout)![1]!;
  const podmanParams = {
    ...params(),
    engine: 'podman',
    image: podmanImage,
    storage: podmanStorage,
    name: PODMAN_NAME,
    start_options: '--http-port 18280 --https-port 18643 --ssh-port 12380 --tftp-port 17079 --dns-port 5499',
  };
  const options = Object.entries(podmanParams).flatMap(([key, value]) => ['-o', `${key}=${value}`]);
  const r = await execa('ocf-tester', ['-n', 'cw-headnode', ...options, agent], { env, reject: false, all: true, timeout: 600_000 });
  t.log(r.all?.split('\n').slice(-1).join('\n'));
  t.is(r.exitCode, 0, r.all);
  t.regex(r.all ?? '', /passed all tests/);
  const state = await sh('podman', ['inspect', '--type', 'container', '--format', '{{.State.Running}}', PODMAN_NAME], { reject: false });
  t.not(state.stdout, 'true');
});

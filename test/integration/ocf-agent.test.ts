// The Pacemaker resource agent (packaging/ocf/cw-headnode) on the real appliance image under real
// Docker: installed with `cw-containerctl install-ocf`, checked by Debian's ocf-tester, and its start,
// monitor and stop driven the way Pacemaker drives them (OCF_RESKEY_* environment, exit codes).
import test from 'ava';
import { execa } from 'execa';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { storagePaths } from '../../src/lib/storage-layout.js';
import { requireTools } from '../helpers/tools.js';
import { cliPath, ctl, imageTarball, sh, tempDir } from './helpers.js';

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

const ocfTest = requireTools('ocf-tester', 'xmllint', 'curl');

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
  await sh('docker', ['rm', '-f', NAME], { reject: false });
  await sh('docker', ['network', 'rm', NET], { reject: false });
}

ocfTest.before(async () => {
  await cleanup();
  mkdirSync(storage);
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

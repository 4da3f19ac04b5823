// The quick start as a new user runs it, non-interactively, on a host with both engines: it must end with
// a healthy head node in the engine it says it used, say so again on a second run, and a later `start`
// must pick the tagged image even when a newer untagged build is lying around.
import test from 'ava';
import { execa } from 'execa';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ctl, repoRoot, sh, tempDir } from './helpers.js';

const NAME = 'cwqs';
// The head node runs on a bridge this test creates, so its dhcpd never sees the host's own networks.
const NET = 'cwqs0';
const SUBNET = '10.213.9.0/24';
const HEAD_IP = '10.213.9.10';
const storageRoot = tempDir('cwqs');
const storage = join(storageRoot, 'cw_container_storage');
const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const TAGGED = `cw-headnode:${version}`;
const leftovers: string[] = [];
/** The engine CLI the quick start said it used. */
let engineCli = '';

const startOptions = ['--name', NAME, '--network', NET, '--ip', HEAD_IP, '--ssh-port', '22'];

function quickstart(extra: string[] = []) {
  // As from a fresh shell: no DOCKER_HOST or CW_ENGINE, no terminal, CI=true.
  const { DOCKER_HOST: _d, CONTAINER_HOST: _c, CW_ENGINE: _e, ...env } = process.env;
  return execa('bash', [join(repoRoot, 'scripts/quickstart.sh'), '--storage', storage, ...extra, '--', ...startOptions], {
    cwd: repoRoot,
    env: { ...env, CI: 'true' },
    extendEnv: false,
    stdin: 'ignore',
    all: true,
    reject: false,
    timeout: 40 * 60_000,
  });
}

async function cleanup(): Promise<void> {
  for (const cli of ['docker', 'podman']) await sh(cli, ['rm', '-f', NAME], { reject: false });
  for (const id of leftovers) await sh('docker', ['rmi', '-f', id], { reject: false });
  await sh('docker', ['network', 'rm', NET], { reject: false });
}

test.before(async () => {
  await cleanup();
  await sh('docker', ['network', 'create', '--driver', 'bridge', '--subnet', SUBNET, '-o', `com.docker.network.bridge.name=${NET}`, NET]);
});

test.after.always(async () => {
  await cleanup();
  rmSync(storageRoot, { recursive: true, force: true });
});

test('the quick start ends with a healthy head node in the engine it names, and a second run leaves it be', async (t) => {
  t.timeout(45 * 60_000);
  const first = await quickstart();
  t.log(first.all);
  t.is(first.exitCode, 0);
  const said = /quickstart: engine: (Docker|Podman) \S+ at (\S+)/.exec(first.all ?? '');
  t.truthy(said, 'the engine is printed');
  // Both engines run here: Docker's socket comes first, as `docker ps` users expect.
  t.is(said![1], 'Docker');
  t.is(said![2], '/var/run/docker.sock');
  engineCli = said![1]!.toLowerCase();
  const health = await execa(engineCli, ['inspect', '-f', '{{.State.Health.Status}} {{.Config.Image}}', NAME]);
  t.is(health.stdout, `healthy ${TAGGED}`);
  t.regex(first.all ?? '', /add-admin .*\n.*\n.*tool-config/);

  const second = await quickstart();
  t.is(second.exitCode, 0, second.all);
  t.regex(second.all ?? '', new RegExp(`cw-headnode is already running \\(container ${NAME} in docker\\)`));
  t.notRegex(second.all ?? '', /Waiting for cw-headnode to become healthy/);
});

test('start after a rebuild picks the tagged image, not the newer untagged leftover', async (t) => {
  t.truthy(engineCli, 'needs the head node of the first test');
  const tagged = (await execa('docker', ['image', 'inspect', '-f', '{{.Id}}', TAGGED])).stdout.trim();
  // What a rebuild leaves behind: an untagged image with the appliance label, newer than the tagged one.
  const build = await execa('docker', ['build', '-q', '-'], {
    input: `FROM ${TAGGED}\nLABEL io.cw-headnode.test=leftover\n`,
    env: { DOCKER_BUILDKIT: '0' },
  });
  const leftover = build.stdout.trim();
  leftovers.push(leftover);
  t.not(leftover, tagged);
  t.is((await execa('docker', ['image', 'inspect', '-f', '{{len .RepoTags}}', leftover])).stdout, '0');

  const ls = await ctl(['img-ls']);
  t.is(ls.exitCode, 0, ls.all);
  const rows = ls.stdout.trim().split('\n').slice(1);
  t.regex(rows.at(-1)!, /^<none>:<none>/, 'the leftover is listed last');

  const stop = await ctl(['stop', '--name', NAME]);
  t.is(stop.exitCode, 0, stop.all);
  t.true(stop.stdout.includes(`Image: ${TAGGED}`), stop.stdout);
  const start = await ctl(['start', storage, ...startOptions]);
  t.is(start.exitCode, 0, start.all);
  t.regex(start.stderr, /^engine: Docker \S+ at \/var\/run\/docker\.sock$/m);
  const running = await execa('docker', ['inspect', '-f', '{{.Config.Image}} {{.Image}} {{.State.Health.Status}}', NAME]);
  t.is(running.stdout, `${TAGGED} ${tagged} healthy`);
  const status = await ctl(['status', '--name', NAME]);
  t.regex(status.stdout.split('\n')[1] ?? '', new RegExp(`^${NAME}\\s+${TAGGED.replace(/\./g, '\\.')}\\s+running\\s+healthy`));
});

import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { installOcf, shippedAgentPath } from '../../../src/host/containerctl/install-ocf/install-ocf.js';
import { ExitError } from '../../../src/lib/errors.js';
import { requireTools } from '../../helpers/tools.js';
import { tempDir } from '../lib/keys.js';

function sink() {
  let text = '';
  return { out: { write: (s: string) => (text += s) }, text: () => text };
}

test('install-ocf writes the shipped agent as DIR/headnode, 0755, and replaces an older one', async (t) => {
  const { dir, cleanup } = tempDir('cw-ocf-');
  t.teardown(cleanup);
  const provider = join(dir, 'resource.d', 'cw');
  const out = sink();
  const target = await installOcf({ dir: provider }, { stdout: out.out });
  t.is(target, join(provider, 'headnode'));
  t.is(statSync(target).mode & 0o777, 0o755);
  t.is(readFileSync(target, 'utf8'), readFileSync(shippedAgentPath(), 'utf8'));
  t.is(out.text(), `Installed the resource agent ${target}\n`);
  writeFileSync(target, '#!/bin/sh\nexit 1\n');
  await installOcf({ dir: provider }, { stdout: sink().out });
  t.is(readFileSync(target, 'utf8'), readFileSync(shippedAgentPath(), 'utf8'));
});

test('install-ocf names what it could not write, and a missing agent', async (t) => {
  const { dir, cleanup } = tempDir('cw-ocf-');
  t.teardown(cleanup);
  writeFileSync(join(dir, 'file'), '');
  const blocked = await t.throwsAsync(installOcf({ dir: join(dir, 'file', 'cw') }, { stdout: sink().out }), { instanceOf: ExitError });
  t.regex(blocked.message, /^cannot write .*\/file\/cw\/headnode \(ENOTDIR\)$/);
  const missing = await t.throwsAsync(installOcf({ dir }, { stdout: sink().out, source: join(dir, 'nope') }), { instanceOf: ExitError });
  t.regex(missing.message, /resource agent is missing from this installation/);
});

requireTools('shellcheck')('the agent is shellcheck-clean as POSIX sh', async (t) => {
  const r = await execa('shellcheck', ['-s', 'sh', shippedAgentPath()], { reject: false });
  t.is(r.exitCode, 0, r.stdout);
});

requireTools('xmllint', 'ocf-tester')('the agent meta-data is valid against the OCF resource agent DTD', async (t) => {
  const dtd = '/usr/share/resource-agents/ra-api-1.dtd';
  const meta = await execa(shippedAgentPath(), ['meta-data'], { env: { OCF_ROOT: '/usr/lib/ocf' }, reject: false });
  t.is(meta.exitCode, 0, meta.stderr);
  const lint = await execa('xmllint', ['--noout', '--dtdvalid', dtd, '-'], { input: meta.stdout, reject: false });
  t.is(lint.exitCode, 0, lint.stderr);
  for (const name of ['storage', 'image', 'engine', 'name', 'containerctl', 'start_options', 'health_timeout', 'stop_grace']) {
    t.regex(meta.stdout, new RegExp(`<parameter name="${name}"`));
  }
});

/** Runs an agent action with `docker` on PATH replaced by a script that prints `message` and fails. */
async function withFailingDocker(action: string, message: string, interval = '20000') {
  const { dir, cleanup } = tempDir('cw-ocf-engine-');
  try {
    writeFileSync(join(dir, 'docker'), `#!/bin/sh\necho '${message}' >&2\nexit 1\n`, { mode: 0o755 });
    const env = {
      PATH: `${dir}:/usr/sbin:/usr/bin:/sbin:/bin`,
      OCF_ROOT: '/usr/lib/ocf',
      OCF_RESKEY_storage: dir,
      OCF_RESKEY_image: 'cw-headnode:0.1.0',
      OCF_RESKEY_CRM_meta_timeout: '20000',
      OCF_RESKEY_CRM_meta_interval: interval,
    };
    return await execa(shippedAgentPath(), [action], { env, extendEnv: false, reject: false, all: true });
  } finally {
    cleanup();
  }
}

requireTools('ocf-tester')('an engine that does not answer is never taken for "not running"; one that knows no such container is', async (t) => {
  const down = 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?';
  const monitor = await withFailingDocker('monitor', down);
  t.is(monitor.exitCode, 1, monitor.all);
  t.regex(monitor.all ?? '', /docker did not say whether container cw-headnode runs/);
  // A stop it cannot confirm fails, so that Pacemaker fences the head instead of starting a second copy.
  const stop = await withFailingDocker('stop', down);
  t.is(stop.exitCode, 1, stop.all);
  t.regex(stop.all ?? '', /cannot confirm the stop/);
  const absent = 'Error: No such container: cw-headnode';
  t.is((await withFailingDocker('monitor', absent)).exitCode, 7);
  t.is((await withFailingDocker('monitor', absent, '0')).exitCode, 7);
  t.is((await withFailingDocker('stop', absent)).exitCode, 0);
});

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

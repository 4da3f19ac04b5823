// The process boundary of the tool binaries: usage on --help, one `ERROR:` line on stderr and exit 1.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const home = mkdtempSync(join(tmpdir(), 'cw-tools-main-'));
test.after.always(() => rmSync(home, { recursive: true, force: true }));

function run(tool: string, args: string[]) {
  const env = { PATH: process.env.PATH, HOME: home, USER: 'admin', CW_BASE_URL: 'http://127.0.0.1:1/api/v1' };
  return spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/tools', tool, 'main.ts'), ...args], { cwd: root, env, encoding: 'utf8' });
}

test('--help prints the usage and exits 0', (t) => {
  const r = run('nodectl', ['--help']);
  t.is(r.status, 0);
  t.true(r.stdout.startsWith('usage: cw-nodectl [options] ACTION [ARGS]\n'));
  t.is(r.stderr, '');
});

test('a failure is one ERROR line on stderr and exit code 1', (t) => {
  const noAgent = run('nodectl', ['ls']);
  t.is(noAgent.status, 1);
  t.is(noAgent.stdout, '');
  t.is(noAgent.stderr, 'ERROR: no ssh-agent: SSH_AUTH_SOCK is not set; run eval `ssh-agent` ; ssh-add\n');
  const unknown = run('clusterctl', ['frob']);
  t.is(unknown.status, 1);
  t.is(unknown.stderr, 'ERROR: unknown action "frob" (cw-clusterctl --help lists them)\n');
  const badFlag = run('bootctl', ['--frob', 'ls']);
  t.is(badFlag.stderr, 'ERROR: unknown option --frob (see --help)\n');
});

// requireTools, proven once for real: ava runs a fixture test that needs mksquashfs with the tool hidden
// from PATH. Under CI=true the run fails and names the tool and its package; without CI the test is
// reported as skipped, not passed.
import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTool, isCi, missingRequirements } from '../../helpers/tools.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const AVA = join(ROOT, 'node_modules/ava/entrypoints/cli.mjs');
const FIXTURE_CONFIG = join(ROOT, 'test/fixtures/tools/ava.config.mjs');

/** A directory to use as the whole PATH: nothing in it. */
function emptyPath(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cw-nopath-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** ava on the fixture with PATH set to `path` and CI set to `ci` (or unset). */
async function runFixture(path: string, ci: string | undefined) {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: path };
  delete env.CI;
  if (ci !== undefined) env.CI = ci;
  return execa(process.execPath, [AVA, '--tap', '--config', FIXTURE_CONFIG], { cwd: ROOT, env, extendEnv: false, reject: false, all: true, stdin: 'ignore' });
}

test('a missing tool fails the test under CI=true, naming it, and is reported skipped elsewhere', async (t) => {
  const path = emptyPath(t);
  t.is(findTool('mksquashfs', { PATH: path }), undefined, 'mksquashfs is hidden by the empty PATH');
  const [ci, dev] = await Promise.all([runFixture(path, 'true'), runFixture(path, undefined)]);

  t.not(ci.exitCode, 0, ci.all);
  t.regex(ci.all, /^not ok 1 - packs a squashfs$/m);
  t.regex(ci.all, /missing mksquashfs \(Debian package squashfs-tools\)/);
  t.regex(ci.all, /^# fail 1$/m);

  t.is(dev.exitCode, 0, dev.all);
  t.regex(dev.all, /^ok 1 - packs a squashfs \[missing mksquashfs \(Debian package squashfs-tools\)\] # SKIP$/m);
  t.regex(dev.all, /^# pass 0$/m);
  t.regex(dev.all, /^# skip 1$/m);
});

test('requirements: tools looked up on PATH and in the sbin directories, root by uid', (t) => {
  const path = emptyPath(t);
  t.deepEqual(missingRequirements(['mksquashfs', 'root'], { env: { PATH: path }, uid: 1000 }), [
    'mksquashfs (Debian package squashfs-tools)',
    'root (run the tests as uid 0)',
  ]);
  t.deepEqual(missingRequirements(['root'], { env: { PATH: path }, uid: 0 }), []);
  t.is(findTool('node', { PATH: `${path}:${join(process.execPath, '..')}` }), process.execPath);
});

test('CI is on for any value but empty, false and 0', (t) => {
  t.true(isCi({ CI: 'true' }));
  t.true(isCi({ CI: '1' }));
  t.false(isCi({}));
  t.false(isCi({ CI: '' }));
  t.false(isCi({ CI: 'false' }));
  t.false(isCi({ CI: '0' }));
});

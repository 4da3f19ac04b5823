// `cw-clusterctl clientpkgs ls` against a real API: the cw-node packages built by
// scripts/build-client-pkgs.sh, an admin's TAR and a file that is not a package, as an admin sees them.
import test from 'ava';
import { execa } from 'execa';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterctl } from '../../../src/tools/clusterctl/clusterctl.js';
import { storagePaths } from '../../../src/lib/storage-layout.js';
import { requireTools } from '../../helpers/tools.js';
import { clusterFixture } from './harness.js';

const fixture = clusterFixture(test, 'cp');
const { scratch, start: cluster } = fixture;
const pkgTest = requireTools('rpmbuild', 'dpkg-deb');
const repo = join(import.meta.dirname, '..', '..', '..');

pkgTest('clientpkgs ls shows name, version, type, arch, size, TAR cached and the file; invalid files flagged', async (t) => {
  const c = await cluster();
  const out = scratch.sub('pkgs');
  const { stdout } = await execa('bash', [join(repo, 'scripts', 'build-client-pkgs.sh'), '--out', out], { stdin: 'ignore' });
  const [rpm, deb] = stdout.trim().split('\n') as [string, string];
  const paths = storagePaths(c.storage);
  for (const d of [paths.clientRpmDir, paths.clientDebDir, paths.clientTarDir]) mkdirSync(d, { recursive: true });

  t.is(await c.ok(clusterctl, ['clientpkgs', 'ls']), 'No client packages (put RPMs in clientpkgs/rpm, DEBs in clientpkgs/deb)\n');

  copyFileSync(rpm, join(paths.clientRpmDir, 'cw-node-0.1.0-1.noarch.rpm'));
  copyFileSync(deb, join(paths.clientDebDir, 'cw-node_0.1.0-1_all.deb'));
  writeFileSync(join(paths.clientRpmDir, 'junk.rpm'), 'not an rpm');
  const table = await c.ok(clusterctl, ['clientpkgs', 'ls']);
  const lines = table.trimEnd().split('\n');
  t.regex(lines[0]!, /^NAME +VERSION +TYPE +ARCH +SIZE +TAR +FILE$/);
  t.regex(lines[1]!, /^cw-node +0\.1\.0-1 +rpm +noarch +\d+ +no +cw-node-0\.1\.0-1\.noarch\.rpm$/);
  t.regex(lines[2]!, /^INVALID +- +rpm +- +10 +- +junk\.rpm$/);
  t.regex(lines[3]!, /^cw-node +0\.1\.0-1 +deb +all +\d+ +- +cw-node_0\.1\.0-1_all\.deb$/);
  t.regex(lines[4]!, /^INVALID rpm\/junk\.rpm: not an RPM: /);

  const json = JSON.parse(await c.ok(clusterctl, ['clientpkgs', 'ls', '--json'])) as { name: string | null; type: string; valid: boolean }[];
  t.deepEqual(json.map((r) => [r.name, r.type, r.valid]), [['cw-node', 'rpm', true], [null, 'rpm', false], ['cw-node', 'deb', true]]);
  t.is((await c.run(clusterctl, ['clientpkgs', 'rm'])).error?.startsWith('ERROR: unknown action "rm" for clientpkgs'), true);
});

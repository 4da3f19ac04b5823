// RPM-family roots with the real dnf. No RPM distro mirror is reachable from the build machines (only
// Debian's and npm's), so the repo is made here: one stub RPM per package a node image asks for
// (rpmbuild), signed with a throwaway key (rpmsign + gpg), indexed with createrepo_c, laid out as
// REPO/<release>/<arch>/ so the distro's URL needs $releasever and $basearch filled in. What is under
// test is our side: the repo and key options, the substitution, and the errors an admin sees.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDnfRoot, NODE_PACKAGES_DNF, rpmBaseArch } from '../../src/images/builders/dnf.js';
import type { DistroSpec } from '../../src/images/builders/common.js';
import { requireTools } from '../helpers/tools.js';

const work = mkdtempSync(join(tmpdir(), 'cw-dnf-it-'));
const gnupg = join(work, 'gnupg');
const unsigned = join(work, 'repo-unsigned');
const signed = join(work, 'repo-signed');
const repoKey = join(work, 'repo-key.asc');
const otherKey = join(work, 'other-key.asc');
// CI installs them (scripts/ci-setup.sh).
const dnfTest = requireTools('dnf', 'rpm', 'rpmbuild', 'rpmsign', 'createrepo_c', 'gpg');

const run = (cmd: string, args: string[]) => execa(cmd, args, { env: { GNUPGHOME: gnupg }, stdin: 'ignore' });

/** A noarch RPM NAME-1.0-1 whose one file, /usr/share/cw-stub/NAME, says its name. */
async function stubRpm(top: string, name: string): Promise<void> {
  const spec = join(top, 'SPECS', `${name}.spec`);
  writeFileSync(
    spec,
    [
      `Name: ${name}`,
      'Version: 1.0',
      'Release: 1',
      `Summary: stands in for ${name}`,
      'License: MIT',
      'BuildArch: noarch',
      '%description',
      `Stands in for ${name} in the dnf build test.`,
      '%install',
      'mkdir -p %{buildroot}/usr/share/cw-stub',
      `echo ${name} > %{buildroot}/usr/share/cw-stub/${name}`,
      '%files',
      `/usr/share/cw-stub/${name}`,
      '',
    ].join('\n'),
  );
  await run('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, spec]);
}

async function newKey(uid: string, file: string): Promise<void> {
  await run('gpg', ['--batch', '--quiet', '--passphrase', '', '--quick-gen-key', uid, 'rsa2048', 'sign', 'never']);
  writeFileSync(file, (await run('gpg', ['--armor', '--export', uid])).stdout);
}

/** REPO/9/<arch>/ with the RPMs of `from` and its repodata. */
async function repo(root: string, from: string): Promise<void> {
  const dir = join(root, '9', rpmBaseArch());
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(from)) await run('cp', [join(from, f), dir]);
  return void (await run('createrepo_c', ['-q', dir]));
}

dnfTest.before(async () => {
  mkdirSync(gnupg, { mode: 0o700 });
  const top = join(work, 'rpmbuild');
  for (const d of ['SPECS', 'BUILD', 'RPMS', 'SOURCES', 'SRPMS']) mkdirSync(join(top, d), { recursive: true });
  for (const name of NODE_PACKAGES_DNF) await stubRpm(top, name);
  const rpms = join(top, 'RPMS', 'noarch');
  await repo(unsigned, rpms);
  await newKey('cw test repo <repo@cw.test>', repoKey);
  await newKey('someone else <other@cw.test>', otherKey);
  const signedRpms = join(work, 'signed-rpms');
  await run('cp', ['-r', rpms, signedRpms]);
  const files = readdirSync(signedRpms).map((f) => join(signedRpms, f));
  // Debian's rpm looks for gpg2 unless told.
  await run('rpmsign', ['--define', '__gpg /usr/bin/gpg', '--define', '_gpg_name repo@cw.test', '--define', `_gpg_path ${gnupg}`, '--addsign', ...files]);
  await repo(signed, signedRpms);
});

test.after.always(() => rmSync(work, { recursive: true, force: true }));

const distro = (url: string, keys: string[] = [], release = '9'): DistroSpec =>
  ({ name: 'Stub', packageManager: 'dnf', release, repos: [{ name: 'base', urls: [url], keys }] }) as unknown as DistroSpec;

/** The packages in the root's rpm database (not the gpg-pubkey entries of imported keys). */
async function installed(root: string): Promise<string[]> {
  const r = await execa('rpm', ['--root', root, '-qa', '--qf', '%{NAME}\\n']);
  return r.stdout.split('\n').filter((n) => n !== '' && n !== 'gpg-pubkey').sort();
}

dnfTest('a root from an unsigned repo: every node package installed, $releasever/$basearch filled in', async (t) => {
  const root = join(work, 'root-unsigned');
  const lines: string[] = [];
  await buildDnfRoot(distro(`file://${unsigned}/$releasever/$basearch/`), root, (l) => lines.push(l));
  t.deepEqual(await installed(root), [...NODE_PACKAGES_DNF].sort());
  for (const name of NODE_PACKAGES_DNF) t.true(existsSync(join(root, 'usr/share/cw-stub', name)), name);
  t.false(lines.some((l) => /Unable to detect release version/.test(l)), 'every dnf call is told the release');
});

dnfTest('a signed repo with its key: the signatures are checked and pass', async (t) => {
  const root = join(work, 'root-signed');
  const lines: string[] = [];
  await buildDnfRoot(distro(`file://${signed}/$releasever/$basearch/`, [`file://${repoKey}`]), root, (l) => lines.push(l));
  t.deepEqual(await installed(root), [...NODE_PACKAGES_DNF].sort());
  t.true(lines.some((l) => /Importing GPG key|imported successfully/i.test(l)), 'the key was imported to check the packages');
});

dnfTest('a signed repo with the wrong key: refused, and the error says GPG and names the key', async (t) => {
  const root = join(work, 'root-wrong-key');
  const err = await t.throwsAsync(buildDnfRoot(distro(`file://${signed}/$releasever/$basearch/`, [`file://${otherKey}`]), root));
  t.regex(err?.message ?? '', /GPG check FAILED|Public key .* is not installed/);
  t.regex(err?.message ?? '', /other-key\.asc/);
  t.deepEqual(await installed(root).catch(() => []), []);
});

dnfTest('a release the repo does not have: the error names the URL dnf really fetched', async (t) => {
  const root = join(work, 'root-release-8');
  const err = await t.throwsAsync(buildDnfRoot(distro(`file://${unsigned}/$releasever/$basearch/`, [], '8'), root));
  t.true((err?.message ?? '').includes(`${unsigned}/8/${rpmBaseArch()}/repodata/repomd.xml`), err?.message);
});

// The cw-node packages scripts/build-client-pkgs.sh builds, read back with the real rpm and dpkg-deb: the
// files, the config file, the scripts (enable, never start), the one trigger; then the appliance's copy
// of them into STORAGE/clientpkgs at start, which never replaces a file that is there.
import test from 'ava';
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installBundledClientPackages } from '../../../src/appliance/clientpkgs/bundled.js';
import { requireTools } from '../../helpers/tools.js';

const pkgTest = requireTools('rpmbuild', 'rpm', 'dpkg-deb');
const repo = join(import.meta.dirname, '..', '..', '..');
const version = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')).version as string;
let work = '';
let out = '';

pkgTest.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'cw-node-pkgs-'));
  out = join(work, 'out');
  const { stdout } = await execa('bash', [join(repo, 'scripts', 'build-client-pkgs.sh'), '--out', out], { stdin: 'ignore' });
  const written = stdout.trim().split('\n');
  if (written.join() !== [join(out, 'rpm', `cw-node-${version}-1.noarch.rpm`), join(out, 'deb', `cw-node_${version}-1_all.deb`)].join()) throw new Error(`unexpected output: ${stdout}`);
});

test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const rpmFile = () => join(out, 'rpm', `cw-node-${version}-1.noarch.rpm`);
const debFile = () => join(out, 'deb', `cw-node_${version}-1_all.deb`);

pkgTest('the RPM: versioned with the product, the agent and its unit, node.conf as %config(noreplace), enable-not-start, one trigger', async (t) => {
  const q = (...args: string[]) => execa('rpm', ['-qp', ...args, rpmFile()], { stdin: 'ignore' }).then((r) => r.stdout);
  t.is(await q('--qf', '%{NAME} %{VERSION} %{RELEASE} %{ARCH}'), `cw-node ${version} 1 noarch`);
  t.deepEqual((await q('-l')).split('\n'), ['/etc/cw', '/etc/cw/node.conf', '/usr/lib/systemd/system/cw-status-updater.service', '/usr/sbin/cw-node-agent']);
  const flags = (await q('--qf', '[%{FILENAMES} %{FILEFLAGS:fflags}\n]')).split('\n');
  t.deepEqual(flags.filter((l) => !l.endsWith(' ')), ['/etc/cw/node.conf cn'], 'only node.conf is config, noreplace');
  t.regex(await q('-R'), /^curl$/m);
  const scripts = await q('--scripts');
  const post = scripts.slice(scripts.indexOf('postinstall scriptlet'), scripts.indexOf('preuninstall scriptlet'));
  t.regex(post, /systemctl enable cw-status-updater\.service/);
  t.notRegex(post, /systemctl (start|restart|try-restart)|--now/, 'installing never starts the service');
  t.regex(post, /no systemd here/);
  const triggers = await q('--triggers');
  t.is(triggers.match(/^triggerin scriptlet/gm)?.length, 1);
  t.regex(triggers, /^triggerin scriptlet \(using \/bin\/sh\) -- openssh-server$/m);
  t.regex(triggers, /mkdir -m 0700 \/root\/\.ssh/);
  // The packaged agent is the one booted nodes run.
  const { stdout: agent } = await execa('sh', ['-c', 'rpm2cpio "$1" | cpio -i --quiet --to-stdout ./usr/sbin/cw-node-agent', 'sh', rpmFile()]);
  t.is(agent, (await readFile(join(repo, 'rootfs', 'node', 'cw-node-agent'), 'utf8')).trimEnd());
});

pkgTest('the DEB: control, conffiles, the unit, a postinst that enables on first install and never starts', async (t) => {
  const field = async (name: string) => (await execa('dpkg-deb', ['-f', debFile(), name])).stdout;
  t.is(await field('Package'), 'cw-node');
  t.is(await field('Version'), `${version}-1`);
  t.is(await field('Architecture'), 'all');
  t.is(await field('Depends'), 'curl');
  const contents = (await execa('dpkg-deb', ['-c', debFile()])).stdout;
  t.regex(contents, /^-rwxr-xr-x root\/root .* \.\/usr\/sbin\/cw-node-agent$/m);
  t.regex(contents, /^-rw-r--r-- root\/root .* \.\/usr\/lib\/systemd\/system\/cw-status-updater\.service$/m);
  const control = join(work, 'control');
  await execa('dpkg-deb', ['-e', debFile(), control]);
  t.is(await readFile(join(control, 'conffiles'), 'utf8'), '/etc/cw/node.conf\n');
  const postinst = await readFile(join(control, 'postinst'), 'utf8');
  t.regex(postinst, /systemctl enable cw-status-updater\.service/);
  t.notRegex(postinst, /systemctl (start|restart)|--now/);
  t.regex(await readFile(join(control, 'prerm'), 'utf8'), /systemctl disable cw-status-updater\.service/);
  for (const script of ['postinst', 'prerm', 'postrm']) await t.notThrowsAsync(execa('sh', ['-n', join(control, script)]), `${script} parses`);
  const unit = (await execa('dpkg-deb', ['--fsys-tarfile', debFile()]).pipe('tar', ['-xO', './usr/lib/systemd/system/cw-status-updater.service'])).stdout;
  t.regex(unit, /^ExecStart=\/usr\/sbin\/cw-node-agent$/m);
  t.regex(unit, /^RestartPreventExitStatus=78$/m);
  t.regex(unit, /^WantedBy=multi-user\.target$/m);
});

pkgTest('the agent of an unconfigured node stops at once with a clear message and exit 78', async (t) => {
  const conf = join(work, 'node.conf');
  await writeFile(conf, await readFile(join(repo, 'rootfs', 'node', 'cw-node', 'node.conf')));
  const r = await execa('sh', [join(repo, 'rootfs', 'node', 'cw-node-agent')], { env: { CW_NODE_CONF: conf }, reject: false, timeout: 5000 });
  t.is(r.exitCode, 78);
  t.regex(r.stderr, /has no CW_HEAD or CW_MAC: not configured yet/);
});

pkgTest('the appliance copies the bundled packages into clientpkgs at start and never replaces a file that is there', async (t) => {
  const storage = join(work, 'storage');
  const dirs = { clientRpmDir: join(storage, 'rpm'), clientDebDir: join(storage, 'deb') };
  await mkdir(dirs.clientRpmDir, { recursive: true });
  await mkdir(dirs.clientDebDir, { recursive: true });
  const own = join(dirs.clientDebDir, `cw-node_${version}-1_all.deb`);
  await writeFile(own, 'an admin rebuilt it');
  await writeFile(join(dirs.clientRpmDir, 'cw-node-0.0.1-1.noarch.rpm'), 'an older version');
  t.deepEqual(await installBundledClientPackages(out, dirs), [`rpm/cw-node-${version}-1.noarch.rpm`]);
  t.is(await readFile(own, 'utf8'), 'an admin rebuilt it');
  t.deepEqual((await readdir(dirs.clientRpmDir)).sort(), ['cw-node-0.0.1-1.noarch.rpm', `cw-node-${version}-1.noarch.rpm`]);
  t.deepEqual(await installBundledClientPackages(out, dirs), [], 'a second start adds nothing');
  t.deepEqual(await installBundledClientPackages(join(work, 'nothing-here'), dirs), []);
});

// The cw-node packages installed for real by dpkg and rpm into scratch roots (busybox as /bin/sh, a
// systemctl that only records its arguments): the files land, the config file is registered, the
// install scripts enable cw-status-updater and never start it, and the RPM's %triggerin fires when
// openssh-server is installed, making /root/.ssh with mode 0700.
import test from 'ava';
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTools } from '../../helpers/tools.js';

const installTest = requireTools('root', 'rpmbuild', 'rpm', 'dpkg', 'dpkg-deb', 'busybox');
const repo = join(import.meta.dirname, '..', '..', '..');
const version = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')).version as string;
let work = '';
let rpm = '';
let deb = '';

installTest.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'cw-node-install-'));
  const { stdout } = await execa('bash', [join(repo, 'scripts', 'build-client-pkgs.sh'), '--out', join(work, 'out')], { stdin: 'ignore' });
  [rpm, deb] = stdout.trim().split('\n') as [string, string];
});

test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** A root where package scripts can run: busybox applets, /dev/null, and a systemctl that logs its arguments. */
async function scratchRoot(name: string, withSystemctl = true): Promise<string> {
  const root = join(work, name);
  for (const d of ['bin', 'dev', 'root', 'tmp', 'etc']) await mkdir(join(root, d), { recursive: true });
  const { stdout: busybox } = await execa('sh', ['-c', 'command -v busybox']);
  await copyFile(busybox, join(root, 'bin', 'busybox'));
  await chmod(join(root, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'chmod', 'rm', 'rmdir', 'mkdir', 'cat']) await symlink('busybox', join(root, 'bin', applet));
  await execa('mknod', ['-m', '666', join(root, 'dev', 'null'), 'c', '1', '3']);
  if (withSystemctl) {
    await writeFile(join(root, 'bin', 'systemctl'), '#!/bin/sh\necho "$*" >>/tmp/systemctl.log\n');
    await chmod(join(root, 'bin', 'systemctl'), 0o755);
  }
  return root;
}

const systemctlCalls = async (root: string) => (await readFile(join(root, 'tmp', 'systemctl.log'), 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);

installTest('dpkg installs the DEB: files in place, node.conf a conffile, postinst enables and does not start', async (t) => {
  const root = await scratchRoot('deb');
  await mkdir(join(root, 'var', 'lib', 'dpkg', 'info'), { recursive: true });
  await mkdir(join(root, 'var', 'lib', 'dpkg', 'updates'), { recursive: true });
  await writeFile(join(root, 'var', 'lib', 'dpkg', 'status'), '');
  await mkdir(join(root, 'etc', 'ssh'));
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
  const r = await execa('dpkg', ['--root', root, '--force-depends', '-i', deb], { env, all: true, reject: false });
  t.is(r.exitCode, 0, r.all);
  t.is((await stat(join(root, 'usr', 'sbin', 'cw-node-agent'))).mode & 0o777, 0o755);
  t.true((await stat(join(root, 'usr', 'lib', 'systemd', 'system', 'cw-status-updater.service'))).isFile());
  t.is(await readFile(join(root, 'var', 'lib', 'dpkg', 'info', 'cw-node.conffiles'), 'utf8'), '/etc/cw/node.conf\n');
  t.deepEqual(await systemctlCalls(root), ['enable cw-status-updater.service']);
  t.is((await stat(join(root, 'root', '.ssh'))).mode & 0o777, 0o700);
  const status = await execa('dpkg', ['--root', root, '-s', 'cw-node'], { env });
  t.regex(status.stdout, new RegExp(`^Version: ${version.replace(/\./g, '\\.')}-1$`, 'm'));
  // Removal disables; still nothing started (no systemd runs in the root).
  await execa('dpkg', ['--root', root, '-r', 'cw-node'], { env });
  t.deepEqual(await systemctlCalls(root), ['enable cw-status-updater.service', 'disable cw-status-updater.service']);
});

installTest('rpm installs the RPM: %post enables and does not start; installing openssh-server fires the %triggerin', async (t) => {
  const root = await scratchRoot('rpm');
  await execa('rpm', ['--root', root, '--initdb']);
  const r = await execa('rpm', ['--root', root, '-i', '--nodeps', rpm], { all: true, reject: false });
  t.is(r.exitCode, 0, r.all);
  t.deepEqual(await systemctlCalls(root), ['enable cw-status-updater.service']);
  t.is((await execa('rpm', ['--root', root, '-qc', 'cw-node'])).stdout, '/etc/cw/node.conf');
  await t.throwsAsync(stat(join(root, 'root', '.ssh')), undefined, 'no trigger before openssh-server');

  // A stand-in openssh-server, installed after cw-node: rpm runs cw-node's %triggerin.
  const top = join(work, 'sshtop');
  await mkdir(join(top, 'SPECS'), { recursive: true });
  const spec = join(top, 'SPECS', 'ssh.spec');
  await writeFile(spec, ['Name: openssh-server', 'Version: 9.9', 'Release: 1', 'Summary: stand-in', 'License: MIT', 'BuildArch: noarch', '%description', 'stand-in', '%files', ''].join('\n'));
  await execa('rpmbuild', ['--quiet', '-bb', '--define', `_topdir ${top}`, spec], { stdin: 'ignore' });
  await execa('rpm', ['--root', root, '-i', '--nodeps', join(top, 'RPMS', 'noarch', 'openssh-server-9.9-1.noarch.rpm')]);
  t.is((await stat(join(root, 'root', '.ssh'))).mode & 0o777, 0o700);

  // Without systemctl the %post says so and the install still succeeds.
  const bare = await scratchRoot('rpm-bare', false);
  await execa('rpm', ['--root', bare, '--initdb']);
  const b = await execa('rpm', ['--root', bare, '-i', '--nodeps', rpm], { all: true });
  t.regex(b.all, /cw-node: no systemd here/);
});

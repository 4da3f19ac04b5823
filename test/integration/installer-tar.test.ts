// The TAR path of a diskful node for real: a root with busybox only (no rpm, no dpkg, no systemd), in a
// chroot, pipes the pre-installer from the real API into sh. The API (in-process, on 127.0.0.1) picks
// the tar installer, converts an RPM built here with rpmbuild (a %post, a %triggerin) and registers the
// node by MAC: files in place, %post ran, the trigger skipped and reported, node.conf, node secret and
// root's key written, both logs in /tmp. A second run installs nothing.
import test from 'ava';
import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkNodeSecret } from '../../src/appliance/boot/node-secret.js';
import { requireTools, toolPath } from '../helpers/tools.js';
import { apiWithTempStore, healthyReport } from '../unit/api/helpers.js';

const tarTest = requireTools('root', 'busybox', 'rpmbuild', 'ssh-keygen');

/** cw-node VERSION: 1.2 has /etc/cw/agent.conf, a later one /etc/cw/agent2.conf instead; every script logs itself. */
async function buildRpm(work: string, version = '1.2'): Promise<string> {
  const top = join(work, `rpmtop-${version}`);
  const conf = version === '1.2' ? 'agent.conf' : 'agent2.conf';
  await mkdir(join(top, 'SPECS'), { recursive: true });
  const spec = join(top, 'SPECS', 'cw-node.spec');
  await writeFile(
    spec,
    [
      'Name: cw-node',
      `Version: ${version}`,
      'Release: 1',
      'Summary: tar installer test',
      'License: MIT',
      'BuildArch: noarch',
      'AutoReqProv: no',
      '%description',
      'tar installer test',
      '%install',
      'mkdir -p %{buildroot}/usr/bin %{buildroot}/etc/cw %{buildroot}/opt/cw/cw-node/lib %{buildroot}/usr/lib/systemd/system',
      'printf "#!/bin/sh\\necho agent\\n" > %{buildroot}/usr/bin/cw-status-updater',
      'chmod 755 %{buildroot}/usr/bin/cw-status-updater',
      `echo "interval=30" > %{buildroot}/etc/cw/${conf}`,
      'echo "inside" > %{buildroot}/opt/cw/cw-node/lib/data',
      'printf "[Service]\\nExecStart=/usr/bin/cw-status-updater\\n" > %{buildroot}/usr/lib/systemd/system/cw-status-updater.service',
      '%pre',
      'echo "pre $1" >> /var/tmp/cw-node-scripts',
      '%post',
      'echo "post $1" >> /var/tmp/cw-node-scripts',
      '%preun',
      `echo "preun $1 (${version})" >> /var/tmp/cw-node-scripts`,
      '%postun',
      `echo "postun $1 (${version})" >> /var/tmp/cw-node-scripts`,
      '%triggerin -- telegraf',
      'echo "trigger" >> /var/tmp/cw-node-scripts',
      '%files',
      '/usr/bin/cw-status-updater',
      `/etc/cw/${conf}`,
      '/opt/cw/cw-node',
      '/usr/lib/systemd/system/cw-status-updater.service',
      '',
    ].join('\n'),
  );
  await execa('rpmbuild', ['-bb', '--define', `_topdir ${top}`, '--define', '__os_install_post %{nil}', spec], { stdin: 'ignore' });
  return join(top, 'RPMS', 'noarch', `cw-node-${version}-1.noarch.rpm`);
}

tarTest('busybox root: pre-installer → tar installer → files, %post, skipped trigger, node secret', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'cw-installer-tar-'));
  const { api, store } = apiWithTempStore({ supervisorHealth: async () => healthyReport });
  try {
    await mkdir(store.paths.clientRpmDir, { recursive: true });
    await mkdir(store.paths.clientTarDir, { recursive: true });
    await copyFile(await buildRpm(work), join(store.paths.clientRpmDir, 'cw-node-1.2-1.noarch.rpm'));
    const mac = (await execa('sh', ['-c', "ip -o link show | sed -n 's|.*link/ether \\([0-9a-f:]*\\).*|\\1|p' | head -n 1"])).stdout.trim();
    t.regex(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    const node = await store.createNode({ mac, ip: '127.0.0.1' });
    await api.listen({ host: '127.0.0.1', port: 0 });
    const port = (api.server.address() as AddressInfo).port;

    const root = join(work, 'root');
    for (const dir of ['bin', 'dev', 'tmp', 'etc', 'root', 'var/tmp', 'opt']) await mkdir(join(root, dir), { recursive: true });
    await copyFile(toolPath('busybox'), join(root, 'bin/busybox'));
    await execa('chmod', ['755', join(root, 'bin/busybox')]);
    await execa('mknod', ['-m', '666', join(root, 'dev/null'), 'c', '1', '3']);
    await execa('chroot', [root, '/bin/busybox', '--install', '-s', '/bin']);
    await writeFile(join(root, 'etc/os-release'), 'ID=busyroot\nNAME="a busybox root"\n');
    const env = { PATH: '/bin', HOME: '/root' };
    const run = () =>
      execa('/usr/sbin/chroot', [root, '/bin/sh', '-c', `wget -q -O - http://127.0.0.1:${port}/api/v1/install/client/installer | sh`], {
        env,
        extendEnv: false,
        reject: false,
      });

    const first = await run();
    t.is(first.exitCode, 0, first.stderr);
    t.regex(first.stderr, /detected: arch=x86_64 os=busyroot like="" tools=\[\] init=other/);
    t.regex(first.stderr, /SKIPPED trigger \/opt\/cw\/cw-node\/pkg\/triggers\/triggerin-1 \(%triggerin -- telegraf\)/);
    t.is(await readFile(join(root, 'var/tmp/cw-node-scripts'), 'utf8'), 'pre 1\npost 1\n');
    t.is(await readFile(join(root, 'etc/cw/agent.conf'), 'utf8'), 'interval=30\n');
    t.is(await readFile(join(root, 'opt/cw/cw-node/lib/data'), 'utf8'), 'inside\n');
    t.is((await stat(join(root, 'usr/bin/cw-status-updater'))).mode & 0o777, 0o755);
    t.truthy(await stat(join(root, 'usr/lib/systemd/system/cw-status-updater.service')));
    t.is(
      await readFile(join(root, 'etc/cw/node.conf'), 'utf8'),
      `# Written by the cw installer; read by cw-status-updater.\nCW_HEAD=http://127.0.0.1:${port}\nCW_MAC=${mac}\nCW_NODE=${node.name}\n`,
    );
    const secretFile = join(root, 'etc/cw/node-secret');
    t.is((await stat(secretFile)).mode & 0o777, 0o600);
    t.is(checkNodeSecret((await readFile(secretFile, 'utf8')).trim(), await store.nodeSecretHash(node.uid)), 'ok');
    t.regex(await readFile(join(root, 'root/.ssh/authorized_keys'), 'utf8'), /^ssh-ed25519 \S+ cw-appliance\n$/);
    const preLog = await readFile(join(root, 'tmp/CW_PREINSTALL_LOG'), 'utf8');
    t.regex(preLog, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ pre-installer started/);
    t.regex(preLog, /pre-installer finished\n$/);
    const log = await readFile(join(root, 'tmp/CW_INSTALL_LOG'), 'utf8');
    t.regex(log, /running the %post script \(\/bin\/sh\)/);
    t.regex(log, /no systemd here: cw-status-updater is installed but not enabled/);
    t.regex(log, /tar installer finished\n$/);

    // Idempotent: the same package again → nothing installed, no script run; logs appended.
    const second = await run();
    t.is(second.exitCode, 0, second.stderr);
    t.regex(second.stderr, /cw-node 1\.2-1 is already installed in \/opt\/cw\/cw-node: nothing to install/);
    t.is(await readFile(join(root, 'var/tmp/cw-node-scripts'), 'utf8'), 'pre 1\npost 1\n');
    t.is((await readFile(join(root, 'tmp/CW_INSTALL_LOG'), 'utf8')).split('tar installer finished').length, 3);

    // An upgrade as rpm -U does it: the new %pre 2 and %post 2, then the old %preun 1 and %postun 1; the
    // file the new version dropped is gone, its new file in place.
    await copyFile(await buildRpm(work, '1.3'), join(store.paths.clientRpmDir, 'cw-node-1.3-1.noarch.rpm'));
    const third = await run();
    t.is(third.exitCode, 0, third.stderr);
    t.is(await readFile(join(root, 'var/tmp/cw-node-scripts'), 'utf8'), 'pre 1\npost 1\npre 2\npost 2\npreun 1 (1.2)\npostun 1 (1.2)\n');
    t.regex(third.stderr, /removed \/etc\/cw\/agent\.conf \(not in the new version\)/);
    await t.throwsAsync(stat(join(root, 'etc/cw/agent.conf')), { code: 'ENOENT' });
    t.is(await readFile(join(root, 'etc/cw/agent2.conf'), 'utf8'), 'interval=30\n');
    t.is((await stat(join(root, 'usr/bin/cw-status-updater'))).mode & 0o777, 0o755);
    t.regex(await readFile(join(root, 'opt/cw/cw-node/pkg/manifest.json'), 'utf8'), /"version": "1\.3"/);
  } finally {
    await api.close();
    await rm(work, { recursive: true, force: true });
  }
});

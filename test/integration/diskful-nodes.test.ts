// Diskful nodes installing themselves from the real appliance, as an admin's site would: a Debian root
// made by debootstrap runs in a container on the cluster network, with its own MAC and address, and pipes
// the pre-installer into sh, the command the README gives. Registration creates the nodes (group
// `diskful`, turned on with cw-clusterctl --set-diskful-register).
// - Debian (dpkg, apt-get): the deb path → cw-node installed by apt-get, cw-status-updater enabled and not
//   running, node.conf, node secret, root's key, both logs in /tmp; the agent started → `up` on the head
//   node; a second run installs nothing.
// - An RPM system (the same root with dpkg and apt taken away, its rpm database holding what the system
//   provides, as an RPM-based distribution's would): the pre-installer picks the rpm installer, Debian's
//   rpm installs the cw-node RPM and its %post enables the service.
import test from 'ava';
import { execa } from 'execa';
import { readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { requireTools } from '../helpers/tools.js';
import { AdminSession, repoRoot, sh, startOnTestBridge, tempDir } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const NET = 'cwdk0';
const SUBNET = '10.213.61.0/24';
const HEAD_IP = '10.213.61.10';
const NAME = 'cwit-diskful-head';
const ROOT_IMAGE = 'cwit-diskful-root:latest';
const MIRROR = process.env.DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const DEBIAN = { container: 'cwit-diskful-deb', ip: '10.213.61.21' };
const RPMSYS = { container: 'cwit-diskful-rpm', ip: '10.213.61.22' };
const top = tempDir('cwdk');
const storage = join(top, 'cw_container_storage');
const home = tempDir('cwdk-home');
const admin = new AdminSession(home, `https://${HEAD_IP}/api/v1`);
const version = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version as string;
const tool = (name: string, args: string[], timeout = 120_000) => admin.tool(name, args, timeout);
const INSTALL = `curl -s http://${HEAD_IP}/api/v1/install/client/installer | sh`;

const diskfulTest = requireTools('root', 'debootstrap', 'rpmbuild');

async function cleanup(): Promise<void> {
  await sh('docker', ['rm', '-f', NAME, DEBIAN.container, RPMSYS.container], { reject: false });
  await sh('docker', ['network', 'rm', NET], { reject: false });
  await sh('docker', ['rmi', '-f', ROOT_IMAGE], { reject: false });
  admin.close();
}

/** A Debian minbase root with what a small diskful node has (systemd, iproute2, curl) and rpm, as an image. */
async function buildRootImage(): Promise<void> {
  const root = join(top, 'root');
  const r = await execa(
    'debootstrap',
    ['--variant=minbase', '--include=systemd-sysv,iproute2,curl,rpm', 'bookworm', root, MIRROR],
    { reject: false, all: true, stdin: 'ignore', timeout: 600_000 },
  );
  if (r.exitCode !== 0) throw new Error(`debootstrap failed:\n${r.all.slice(-3000)}`);
  await execa('sh', ['-c', 'tar -C "$1" -c . | docker import - "$2"', 'sh', root, ROOT_IMAGE], { stdin: 'ignore' });
  rmSync(root, { recursive: true, force: true });
}

/** An RPM that only declares what the system already has, as an RPM distribution's base packages do. */
async function buildProvidesRpm(): Promise<string> {
  const rpmTop = join(top, 'rpmtop');
  mkdirSync(join(rpmTop, 'SPECS'), { recursive: true });
  const spec = join(rpmTop, 'SPECS', 'system-provides.spec');
  writeFileSync(
    spec,
    [
      'Name: system-provides',
      'Version: 1',
      'Release: 1',
      'Summary: what this root provides outside rpm',
      'License: MIT',
      'BuildArch: noarch',
      'Provides: curl, /bin/sh',
      '%description',
      'The base system of the test root, which rpm did not install.',
      '%files',
      '',
    ].join('\n'),
  );
  await execa('rpmbuild', ['-bb', '--define', `_topdir ${rpmTop}`, spec], { stdin: 'ignore' });
  return join(rpmTop, 'RPMS', 'noarch', 'system-provides-1-1.noarch.rpm');
}

async function startNode(node: typeof DEBIAN): Promise<void> {
  await sh('docker', [
    'run', '-d', '--name', node.container, '--hostname', node.container, '--network', NET, '--ip', node.ip,
    ROOT_IMAGE, 'sleep', 'infinity',
  ]);
}

const dexec = (container: string, args: string[], timeout = 300_000) =>
  execa('docker', ['exec', container, ...args], { reject: false, all: true, stdin: 'ignore', timeout });

/** The command lines of the container's processes. */
async function processes(container: string): Promise<string> {
  const r = await dexec(container, ['sh', '-c', 'for p in /proc/[0-9]*; do tr "\\0" " " <"$p/cmdline"; echo; done']);
  return r.stdout;
}

/** The MAC the engine gave the container's interface (the node reports the one it reaches the head through). */
const macOf = async (container: string) => (await dexec(container, ['cat', '/sys/class/net/eth0/address'])).stdout.trim();

const nodeName = async (container: string) => /^CW_NODE=(\S+)$/m.exec((await dexec(container, ['cat', '/etc/cw/node.conf'])).stdout)?.[1] ?? '';

test.before(async () => {
  await cleanup();
  await Promise.all([buildRootImage(), startOnTestBridge({ name: NAME, net: NET, subnet: SUBNET, headIp: HEAD_IP, storage, admin })]);
  for (const args of [['create', 'name=diskful']]) {
    const r = await tool('attribctl', args);
    if (r.exitCode !== 0) throw new Error(r.all);
  }
  const on = await tool('clusterctl', ['--set-diskful-register', 'diskful']);
  if (on.exitCode !== 0) throw new Error(on.all);
  await Promise.all([startNode(DEBIAN), startNode(RPMSYS)]);
});

test.after.always(async () => {
  await cleanup();
  rmSync(top, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

diskfulTest.serial('a Debian root: curl … | sh → the deb path, cw-node installed, enabled, not running, logs in /tmp; the agent started → up', async (t) => {
  const first = await dexec(DEBIAN.container, ['sh', '-c', INSTALL]);
  t.is(first.exitCode, 0, first.all);
  t.regex(first.all, /detected: arch=x86_64 os=debian like="" tools=\["rpm","dpkg","apt-get"\] init=other/);
  t.regex(first.all, /running the installer the head node chose \(cw deb installer\)/);
  t.is((await dexec(DEBIAN.container, ['dpkg-query', '-W', '-f', '${Status} ${Version}', 'cw-node'])).stdout, `install ok installed ${version}-1`);
  t.is((await dexec(DEBIAN.container, ['systemctl', 'is-enabled', 'cw-status-updater'])).stdout.trim(), 'enabled');
  t.regex(first.all, /cw-status-updater is enabled \(by the package\) \(systemd is not running here: it starts at the next boot\)/);
  t.notRegex(await processes(DEBIAN.container), /cw-node-agent/);
  const preLog = await dexec(DEBIAN.container, ['cat', '/tmp/CW_PREINSTALL_LOG']);
  t.regex(preLog.stdout, /pre-installer finished$/);
  const log = await dexec(DEBIAN.container, ['cat', '/tmp/CW_INSTALL_LOG']);
  t.regex(log.stdout, new RegExp(`installed cw-node ${version.replace(/\./g, '\\.')}-1\\n`));
  t.regex(log.stdout, /deb installer finished$/);

  // Registered: created in the diskful group with its MAC and address; its secret and root's key in place.
  const name = await nodeName(DEBIAN.container);
  const mac = await macOf(DEBIAN.container);
  t.regex(name, /^n\d+$/);
  t.regex(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  t.regex(readFileSync(join(storage, 'logs', 'api.log'), 'utf8'), new RegExp(`diskful node ${name} \\(${mac}, ${DEBIAN.ip.replace(/\./g, '\\.')}\\) created by registration in group diskful`));
  const ls = await tool('nodectl', ['-i', name, 'ls', '-l']);
  t.is(ls.exitCode, 0, ls.all);
  t.regex(ls.stdout, new RegExp(mac));
  t.regex(ls.stdout, new RegExp(DEBIAN.ip.replace(/\./g, '\\.')));
  t.is((await dexec(DEBIAN.container, ['stat', '-c', '%a', '/etc/cw/node-secret'])).stdout, '600');
  t.regex((await dexec(DEBIAN.container, ['cat', '/root/.ssh/authorized_keys'])).stdout, /^ssh-ed25519 \S+ cw-appliance$/m);

  // The agent, started as its unit starts it, makes the node `up`.
  await execa('docker', ['exec', '-d', DEBIAN.container, '/usr/sbin/cw-node-agent']);
  const up = await tool('nodectl', ['-i', name, 'waitfor', 'up', '--timeout', '60'], 80_000);
  t.is(up.exitCode, 0, up.all);
  const status = await tool('nodectl', ['-i', name, 'status']);
  t.regex(status.stdout, /\bup\b/, status.all);

  // Again: nothing to install, the logs appended.
  const second = await dexec(DEBIAN.container, ['sh', '-c', INSTALL]);
  t.is(second.exitCode, 0, second.all);
  t.regex(second.all, new RegExp(`cw-node ${version.replace(/\./g, '\\.')}-1 is already installed: nothing to install`));
  t.is((await dexec(DEBIAN.container, ['cat', '/tmp/CW_INSTALL_LOG'])).stdout.split('deb installer finished').length, 3);
});

diskfulTest.serial('an RPM system: the pre-installer picks the rpm installer; rpm installs cw-node and its %post enables the service', async (t) => {
  const c = RPMSYS.container;
  // No dpkg or apt: rpm is this system's package manager, its database holding what the base system has.
  const strip = await dexec(c, ['sh', '-c', 'rm -rf /var/lib/dpkg /usr/bin/dpkg* /usr/bin/apt* && rpm --initdb']);
  t.is(strip.exitCode, 0, strip.all);
  await sh('docker', ['cp', await buildProvidesRpm(), `${c}:/tmp/system-provides.rpm`]);
  const base = await dexec(c, ['rpm', '-i', '/tmp/system-provides.rpm']);
  t.is(base.exitCode, 0, base.all);

  const run = await dexec(c, ['sh', '-c', INSTALL]);
  t.is(run.exitCode, 0, run.all);
  t.regex(run.all, /tools=\["rpm"\]/);
  t.regex(run.all, /running the installer the head node chose \(cw rpm installer\)/);
  t.is((await dexec(c, ['rpm', '-q', 'cw-node'])).stdout, `cw-node-${version}-1.noarch`);
  // %post ran: the service was enabled by the package before the installer looked.
  t.is((await dexec(c, ['systemctl', 'is-enabled', 'cw-status-updater'])).stdout.trim(), 'enabled');
  t.regex(run.all, /cw-status-updater is enabled \(by the package\)/);
  t.notRegex(await processes(c), /cw-node-agent/);
  t.regex((await dexec(c, ['cat', '/tmp/CW_INSTALL_LOG'])).stdout, /rpm installer finished$/);
  const name = await nodeName(c);
  const ls = await tool('nodectl', ['-i', name, 'ls', '-l']);
  t.regex(ls.stdout, new RegExp(await macOf(c)), ls.all);

  const again = await dexec(c, ['sh', '-c', INSTALL]);
  t.is(again.exitCode, 0, again.all);
  t.regex(again.all, new RegExp(`cw-node-${version.replace(/\./g, '\\.')}-1\\.noarch is already installed: nothing to install`));
});

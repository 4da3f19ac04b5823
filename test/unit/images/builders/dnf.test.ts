import test from 'ava';
import { dnfArgs, rpmBaseArch, substituteRepoVars } from '../../../../src/images/builders/dnf.js';
import { debootstrapPlan } from '../../../../src/images/builders/debootstrap.js';
import type { DistroSpec } from '../../../../src/images/builders/common.js';

const rocky: DistroSpec = {
  name: 'Rocky9',
  packageManager: 'dnf',
  release: '9',
  repos: [
    { name: 'baseos', urls: ['http://mirror.example/rocky/$releasever/BaseOS/$basearch/os/'], keys: [] },
    { name: 'appstream', urls: ['http://mirror.example/rocky/${releasever}/AppStream/${basearch}/os/'], keys: ['http://mirror.example/RPM-GPG-KEY-$releasever'] },
  ],
};

test('substituteRepoVars fills $releasever, $basearch and ${...} forms, leaving unknown variables', (t) => {
  t.is(substituteRepoVars('http://m/$releasever/os/$basearch/${arch}/$infra', { releasever: '7', basearch: 'x86_64' }), 'http://m/7/os/x86_64/x86_64/$infra');
  t.is(rpmBaseArch('x64'), 'x86_64');
  t.is(rpmBaseArch('arm64'), 'aarch64');
});

test('dnfArgs: installroot, releasever, only the distro repos enabled, keys turn on gpgcheck', (t) => {
  const args = dnfArgs(rocky, '/ws/roots/r9', { basearch: 'x86_64' });
  t.deepEqual(args, [
    '-y',
    '--installroot',
    '/ws/roots/r9',
    '--releasever',
    '9',
    '--setopt=install_weak_deps=False',
    '--setopt=tsflags=nodocs',
    '--setopt=skip_if_unavailable=False',
    '--repofrompath=cw-baseos-0,http://mirror.example/rocky/9/BaseOS/x86_64/os/',
    '--setopt=cw-baseos-0.gpgcheck=0',
    '--repofrompath=cw-appstream-0,http://mirror.example/rocky/9/AppStream/x86_64/os/',
    '--setopt=cw-appstream-0.gpgcheck=1',
    '--setopt=cw-appstream-0.gpgkey=http://mirror.example/RPM-GPG-KEY-9',
    '--repo=cw-baseos-0,cw-appstream-0',
    'install',
    'systemd',
    'iproute',
    'curl',
    'openssh-server',
    'kmod',
    'kernel',
    'ca-certificates',
    'dnf',
    'rpm',
  ]);
});

test('dnfArgs: the seed CentOS repo for release 6 and 7; bad input refused', (t) => {
  const centos = (release: string): DistroSpec => ({
    name: 'CentOS',
    packageManager: 'yum',
    release,
    repos: [{ name: 'CentOS_base', urls: ['http://mirror.centos.org/centos/$releasever/os/$basearch/'], keys: [] }],
  });
  t.true(dnfArgs(centos('7'), '/r', { basearch: 'x86_64' }).includes('--repofrompath=cw-CentOS_base-0,http://mirror.centos.org/centos/7/os/x86_64/'));
  t.true(dnfArgs(centos('6'), '/r', { basearch: 'x86_64', packages: ['kernel'] }).slice(-2).join(' ') === 'install kernel');
  t.throws(() => dnfArgs({ ...centos('7'), repos: [] }, '/r'), { message: /has no repo URLs/ });
  t.throws(() => dnfArgs(centos('7; rm'), '/r'), { message: /not a release version/ });
  t.throws(() => dnfArgs({ ...centos('7'), repos: [{ name: 'x', urls: ['http://a b/'], keys: [] }] }, '/r'), { message: /not an http/ });
});

test('debootstrapPlan: minbase with the node packages, suite from the release, mirror from the repo', (t) => {
  const plan = debootstrapPlan({ name: 'Debian', packageManager: 'apt', release: '12', repos: [{ name: 'd', urls: ['http://deb.example/debian/'], keys: [] }] }, '/ws/roots/d');
  t.deepEqual(plan.args, [
    '--variant=minbase',
    '--include=systemd-sysv,udev,iproute2,curl,kmod,ca-certificates,openssh-server,linux-image-cloud-amd64',
    'bookworm',
    '/ws/roots/d',
    'http://deb.example/debian',
  ]);
  const dflt = debootstrapPlan({ name: 'Debian', packageManager: 'apt', release: '', repos: [] }, '/r');
  t.is(dflt.suite, 'bookworm');
  t.is(dflt.mirror, 'http://deb.debian.org/debian');
  t.throws(() => debootstrapPlan({ name: 'D', packageManager: 'apt', release: 'Book Worm', repos: [] }, '/r'), { message: /not a Debian suite/ });
});

// Installers of diskful nodes: which one a platform gets, the head URL as the only value filled in, the
// admin's directory before the shipped one, the HTTP edge (validation, rate limit, registration by MAC
// from the node's own address), and the shipped scripts under busybox sh.
import test from 'ava';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  COMMON_NAME,
  fillHead,
  findInstaller,
  includeCommon,
  installerNames,
  platformOfDetected,
  platformOfQuery,
  SHIPPED_INSTALLERS_DIR,
} from '../../../src/appliance/clientpkgs/installers.js';
import { checkNodeSecret } from '../../../src/appliance/boot/node-secret.js';
import { requireTools, toolPath } from '../../helpers/tools.js';
import { apiWithTempStore, healthyReport, session } from '../api/helpers.js';

const HEAD = 'http://10.0.0.1:8080';

test('query: known values, unknown ones refused with the field, "unknown" means not known', (t) => {
  t.deepEqual(platformOfQuery({ arch: 'x86_64', os: 'rhel', pkg: 'rpm' }), { arch: 'x86_64', os: 'rhel', pkg: 'rpm' });
  t.deepEqual(platformOfQuery({ pkg: 'tar', arch: 'unknown' }), { pkg: 'tar' });
  t.throws(() => platformOfQuery({ arch: 'sparc' }), { message: /^arch: "sparc" is not one of x86_64, aarch64/ });
  t.throws(() => platformOfQuery({ os: 'rhel;rm -rf /' }), { message: /^os: / });
  t.throws(() => platformOfQuery({ pkg: ['rpm'] }), { message: /^pkg: object/ });
});

test('detected: the package type follows the tools; unknown arch with rpm → rpm', (t) => {
  t.deepEqual(platformOfDetected({ arch: 'armv7l', os_id: 'opensuse-leap', tools: ['rpm'] }), { pkg: 'rpm' });
  t.deepEqual(platformOfDetected({ arch: 'x86_64', os_id: 'rocky', os_like: 'rhel centos fedora', tools: ['rpm', 'dnf'] }), {
    arch: 'x86_64',
    os: 'rhel',
    pkg: 'rpm',
  });
  t.deepEqual(platformOfDetected({ arch: 'aarch64', os_id: 'ubuntu', os_like: 'debian', tools: ['dpkg', 'apt-get', 'rpm'] }), {
    arch: 'aarch64',
    os: 'debian',
    pkg: 'deb',
  });
  t.deepEqual(platformOfDetected({ os_id: 'cumulus-linux', os_like: 'debian', tools: ['dpkg'] }), { os: 'cumulus', pkg: 'deb' });
  t.deepEqual(platformOfDetected({ arch: 'x86_64', os_id: 'alpine', tools: [] }), { arch: 'x86_64', pkg: 'tar' });
  t.deepEqual(platformOfDetected({}), { pkg: 'tar' });
});

test('names: most specific first, the package type from the OS when not given', (t) => {
  t.deepEqual(installerNames({ arch: 'x86_64', os: 'rhel', pkg: 'rpm' }), ['rhel-x86_64-rpm.sh', 'rhel-rpm.sh', 'x86_64-rpm.sh', 'rpm.sh']);
  t.deepEqual(installerNames({ os: 'sonic' }), ['sonic-deb.sh', 'deb.sh']);
  t.deepEqual(installerNames({ os: 'rhel' }), ['rhel-rpm.sh', 'rpm.sh']);
  t.deepEqual(installerNames({}), ['tar.sh']);
});

test('fillHead: only a checked http://HOST[:PORT] into the one CW_HEAD= line', (t) => {
  t.is(fillHead('#!/bin/sh\nCW_HEAD=\necho "$CW_HEAD"\n', HEAD, 'x.sh'), `#!/bin/sh\nCW_HEAD='${HEAD}'\necho "$CW_HEAD"\n`);
  for (const bad of ["http://a'b", 'http://h/$(reboot)', 'https://h', 'http://h:99999', 'http://h\nrm -rf /']) {
    t.throws(() => fillHead('CW_HEAD=\n', bad, 'x.sh'), { message: /is not http:\/\/HOST\[:PORT\]/ });
  }
  t.throws(() => fillHead('#!/bin/sh\n', HEAD, 'x.sh'), { message: /must contain the line "CW_HEAD=" exactly once \(found 0\)/ });
  t.throws(() => fillHead('CW_HEAD=\nCW_HEAD=\n', HEAD, 'x.sh'), { message: /found 2/ });
});

test('findInstaller: the admin\'s file before the shipped one, the specific before the generic; symlinks refused', async (t) => {
  const admin = await mkdtemp(join(tmpdir(), 'cw-installers-'));
  try {
    t.is((await findInstaller({ pkg: 'rpm' }, HEAD, { adminDir: admin }))?.origin, 'shipped');
    t.regex((await findInstaller(null, HEAD, { adminDir: admin }))?.text ?? '', new RegExp(`^CW_HEAD='${HEAD}'$`, 'm'));
    await writeFile(join(admin, 'rpm.sh'), '#!/bin/sh\n# mine\nCW_HEAD=\n');
    const mine = await findInstaller({ arch: 'aarch64', os: 'rhel', pkg: 'rpm' }, HEAD, { adminDir: admin });
    t.like(mine, { name: 'rpm.sh', origin: 'admin' });
    await writeFile(join(admin, 'rhel-aarch64-rpm.sh'), '#!/bin/sh\nCW_HEAD=\n');
    t.like(await findInstaller({ arch: 'aarch64', os: 'rhel', pkg: 'rpm' }, HEAD, { adminDir: admin }), { name: 'rhel-aarch64-rpm.sh', origin: 'admin' });
    t.like(await findInstaller({ arch: 'x86_64', os: 'rhel', pkg: 'rpm' }, HEAD, { adminDir: admin }), { name: 'rpm.sh', origin: 'admin' });
    await symlink('/etc/passwd', join(admin, 'deb.sh'));
    await t.throwsAsync(findInstaller({ pkg: 'deb' }, HEAD, { adminDir: admin }), { message: /deb.sh is a symbolic link/ });
  } finally {
    await rm(admin, { recursive: true, force: true });
  }
});

test('GET/POST /install/client/installer: anonymous, validated, the Host as head URL, rate limited', async (t) => {
  const { api } = apiWithTempStore({ supervisorHealth: async () => healthyReport, installers: { rate: { burst: 6, perSecond: 0.001 } } });
  try {
    const get = (url: string, host = '10.0.0.1:8080') => api.inject({ method: 'GET', url, headers: { host }, remoteAddress: '10.0.0.50' });
    const pre = await get('/api/v1/install/client/installer');
    t.is(pre.statusCode, 200);
    t.is(pre.headers['x-cw-installer'], 'shipped/preinstall.sh');
    t.regex(pre.body, /^CW_HEAD='http:\/\/10\.0\.0\.1:8080'$/m);
    const rpm = await get('/api/v1/install/client/installer?arch=unknown&os=rhel&pkg=rpm');
    t.is(rpm.headers['x-cw-installer'], 'shipped/rpm.sh');
    t.is((await get('/api/v1/install/client/installer?pkg=tar')).headers['x-cw-installer'], 'shipped/tar.sh');
    const bad = await get('/api/v1/install/client/installer?arch=sparc');
    t.is(bad.statusCode, 400);
    t.regex(bad.json().error, /arch: "sparc"/);
    t.is((await get('/api/v1/install/client/installer?color=red')).statusCode, 400);
    t.is((await get('/api/v1/install/client/installer', "h'$(x)")).statusCode, 400);
    const post = await api.inject({
      method: 'POST',
      url: '/api/v1/install/client/installer',
      headers: { host: '10.0.0.1', 'content-type': 'application/json' },
      payload: { arch: 'x86_64', os_id: 'debian', os_like: '', tools: ['dpkg', 'apt-get'], init: 'systemd' },
      remoteAddress: '10.0.0.50',
    });
    t.is(post.statusCode, 200);
    t.is(post.headers['x-cw-installer'], 'shipped/deb.sh');
    t.regex(post.body, /^CW_HEAD='http:\/\/10\.0\.0\.1'$/m);
    const hostile = await api.inject({
      method: 'POST',
      url: '/api/v1/install/client/installer',
      headers: { host: '10.0.0.1', 'content-type': 'application/json' },
      payload: { arch: 'x86_64"; reboot', tools: ['rpm'] },
      remoteAddress: '10.0.0.50',
    });
    t.is(hostile.statusCode, 400);
    const huge = await api.inject({
      method: 'POST',
      url: '/api/v1/install/client/installer',
      headers: { host: '10.0.0.1', 'content-type': 'application/json' },
      payload: JSON.stringify({ os_like: 'x'.repeat(8000) }),
      remoteAddress: '10.0.0.50',
    });
    t.is(huge.statusCode, 413);
    const limited = await get('/api/v1/install/client/installer');
    t.is(limited.statusCode, 429);
    t.truthy(limited.headers['retry-after']);
    t.is((await api.inject({ method: 'GET', url: '/api/v1/install/client/installer', headers: { host: '10.0.0.1' }, remoteAddress: '10.0.0.51' })).statusCode, 200);
  } finally {
    await api.close();
  }
});

test('POST /install/client/register: a node known by MAC, from its own address, gets a fresh secret', async (t) => {
  const { api, store } = apiWithTempStore({ supervisorHealth: async () => healthyReport });
  try {
    const node = await store.createNode({ mac: '52:54:00:00:00:10', ip: '10.0.0.110' });
    const register = (mac: string, from: string) =>
      api.inject({ method: 'POST', url: '/api/v1/install/client/register', headers: { host: '10.0.0.1' }, payload: { mac }, remoteAddress: from });
    const unknown = await register('52:54:00:00:00:99', '10.0.0.110');
    t.is(unknown.statusCode, 404);
    const elsewhere = await register('52:54:00:00:00:10', '10.0.0.200');
    t.is(elsewhere.statusCode, 403);
    t.regex(elsewhere.json().error, /registers only from its own address 10\.0\.0\.110/);
    t.falsy(await store.nodeSecretHash(node.uid));
    t.is((await register('not-a-mac', '10.0.0.110')).statusCode, 400);
    const okReply = await register('52:54:00:00:00:10', '10.0.0.110');
    t.is(okReply.statusCode, 200);
    const { name, secret } = okReply.json().data as { name: string; secret: string };
    t.is(name, node.name);
    t.is(checkNodeSecret(secret, await store.nodeSecretHash(node.uid)), 'ok');
    // Rate limited per address: a burst of 5, then one a minute.
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await register('52:54:00:00:00:10', '10.0.0.110')).statusCode);
    t.true(statuses.includes(429));
  } finally {
    await api.close();
  }
});

const bbTest = requireTools('busybox');

const SHIPPED_NAMES = ['deb.sh', 'preinstall.sh', 'rpm.sh', 'tar.sh'];

/** Each shipped installer as a node gets it (shared functions in place; head URL filled in unless `head` is null), in DIR. */
async function renderShipped(dir: string, head: string | null): Promise<string[]> {
  const common = readFileSync(join(SHIPPED_INSTALLERS_DIR, COMMON_NAME), 'utf8');
  const files: string[] = [];
  for (const name of SHIPPED_NAMES) {
    const text = includeCommon(readFileSync(join(SHIPPED_INSTALLERS_DIR, name), 'utf8'), common, name);
    const file = join(dir, name);
    await writeFile(file, head === null ? text : fillHead(text, head, name));
    files.push(file);
  }
  return files;
}

test('includeCommon: the shared functions once, in place of the one marker line; none → unchanged', (t) => {
  const common = '#!/bin/sh\n# header\n# more\nset -u\ncw_log() { :; }\n\n';
  t.is(includeCommon('#!/bin/sh\nCW_HEAD=\n# @cw-common\ncw_log hi\n', common, 'x.sh'), '#!/bin/sh\nCW_HEAD=\nset -u\ncw_log() { :; }\ncw_log hi\n');
  t.is(includeCommon('#!/bin/sh\necho $&\n', common, 'x.sh'), '#!/bin/sh\necho $&\n');
  t.is(includeCommon('# @cw-common\n', 'x=\'$&$1\'\n', 'x.sh'), "x='$&$1'\n");
  t.throws(() => includeCommon('# @cw-common\n# @cw-common\n', common, 'x.sh'), { message: /at most once \(found 2\)/ });
  t.throws(() => includeCommon('# @cw-common\n', 'CW_HEAD=\n', 'x.sh'), { message: /must not set CW_HEAD/ });
});

bbTest('the shipped installers, as served, parse under sh -n and busybox sh -n; each source has one CW_HEAD= line', async (t) => {
  t.deepEqual((await readdir(SHIPPED_INSTALLERS_DIR)).filter((n) => n.endsWith('.sh')).sort(), SHIPPED_NAMES);
  const dir = await mkdtemp(join(tmpdir(), 'cw-installers-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const file of await renderShipped(dir, HEAD)) {
    for (const cmd of [[toolPath('busybox'), 'sh', '-n', file], ['sh', '-n', file]] as const) {
      const r = await execa(cmd[0], cmd.slice(1), { reject: false });
      t.is(r.exitCode, 0, `${file}: ${r.stderr}`);
    }
    t.regex(readFileSync(file, 'utf8'), /^cw_log\(\) \{$/m, `${file} holds the shared functions`);
  }
  for (const name of SHIPPED_NAMES) t.notThrows(() => fillHead(readFileSync(join(SHIPPED_INSTALLERS_DIR, name), 'utf8'), HEAD, name));
});

requireTools('shellcheck')('the shipped installers, as served, and their shared functions are shellcheck-clean as POSIX sh', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cw-installers-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const files = [...(await renderShipped(dir, HEAD)), join(SHIPPED_INSTALLERS_DIR, COMMON_NAME)];
  const r = await execa('shellcheck', ['-s', 'sh', ...files], { reject: false });
  t.is(r.exitCode, 0, r.stdout);
});

bbTest('an installer served without a head URL stops with a clear message, logged where CW_LOG_DIR says', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cw-installer-run-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await renderShipped(dir, null);
  for (const [name, log] of [
    ['tar.sh', 'CW_INSTALL_LOG'],
    ['preinstall.sh', 'CW_PREINSTALL_LOG'],
  ] as const) {
    const r = await execa(toolPath('busybox'), ['sh', join(dir, name)], { reject: false, env: { HOME: dir, CW_LOG_DIR: dir } });
    t.not(r.exitCode, 0);
    t.regex(r.stderr, /no head node URL in this script/);
    t.regex(readFileSync(join(dir, log), 'utf8'), /ERROR: no head node URL in this script/);
  }
});

test('registration creates unknown nodes only when an admin turned it on: in that group, rate limited, capped', async (t) => {
  const s = await session(t, { installers: { createRate: { burst: 3, perSecond: 0.0001 }, createCap: 2, registerRate: { burst: 100, perSecond: 1 } } });
  const register = (mac: string, from: string) =>
    s.api.inject({ method: 'POST', url: '/api/v1/install/client/register', headers: { host: '10.0.0.1' }, payload: { mac }, remoteAddress: from });
  t.is((await register('52:54:00:00:01:01', '10.0.0.121')).statusCode, 404);
  t.is((await s.call('PATCH', '/cluster', { diskful_register: 'diskful' })).status, 400);
  await s.store.create('attribs', { name: 'diskful' });
  const on = await s.call('PATCH', '/cluster', { diskful_register: 'diskful' });
  t.is(on.status, 200);
  t.is(on.body.data.diskful_register, 'diskful');
  const first = await register('52:54:00:00:01:01', '10.0.0.121');
  t.is(first.statusCode, 200);
  const created = await s.store.getNode('52:54:00:00:01:01');
  t.deepEqual([created?.ip, created?.groups], ['10.0.0.121', ['diskful']]);
  t.is(first.json().data.name, created?.name);
  // The same node again (a second installer run): its own address, a new secret, no new node.
  t.is((await register('52:54:00:00:01:01', '10.0.0.121')).statusCode, 200);
  // Its MAC from another address is not it.
  t.is((await register('52:54:00:00:01:01', '10.0.0.99')).statusCode, 403);
  t.is((await register('52:54:00:00:01:02', '10.0.0.122')).statusCode, 200);
  const capped = await register('52:54:00:00:01:03', '10.0.0.123');
  t.is(capped.statusCode, 403);
  t.regex(capped.json().error, /group diskful has reached 2 nodes/);
  const limited = await register('52:54:00:00:01:04', '10.0.0.124');
  t.is(limited.statusCode, 429);
  t.is((await s.store.listNodes()).length, 2);
  t.is((await s.call('PATCH', '/cluster', { diskful_register: null })).body.data.diskful_register, null);
  t.is((await register('52:54:00:00:01:05', '10.0.0.125')).statusCode, 404);
});

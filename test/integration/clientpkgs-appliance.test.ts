// The tar download against the real appliance, through nginx on plain HTTP as nodes use it: 50 nodes
// (50 addresses on the test bridge) asking at once for a never-converted RPM get 50 identical TARs from
// one conversion, byte for byte what the converter makes here; names that could reach outside
// clientpkgs/ are refused; a DEB-only name is refused with the seed's reason.
import test from 'ava';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpmTarCache } from '../../src/appliance/clientpkgs/tar-cache.js';
import { AdminSession, sh, startOnTestBridge, tempDir, waitFor } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const NET = 'cwcp0';
const SUBNET = '10.213.32.0/24';
const HEAD_IP = '10.213.32.10';
const NAME = 'cwit-clientpkgs';
const NODES = 50;
/** The host's own addresses on the test bridge, one per simulated node (the API rate-limits per address). */
const nodeIp = (i: number) => `10.213.32.${100 + i}`;
const top = tempDir('cwcp');
const storage = join(top, 'cw_container_storage');
const home = tempDir('cwcp-home');
const admin = new AdminSession(home, `https://${HEAD_IP}/api/v1`);
let rpm = '';

async function cleanup(): Promise<void> {
  await sh('docker', ['rm', '-f', NAME], { reject: false });
  // Removing the network removes its bridge and the addresses added to it.
  await sh('docker', ['network', 'rm', NET], { reject: false });
  admin.close();
}

async function buildRpm(dir: string): Promise<string> {
  await mkdir(join(dir, 'SPECS'), { recursive: true });
  const spec = join(dir, 'SPECS', 'cw-node.spec');
  writeFileSync(
    spec,
    [
      'Name: cw-node',
      'Version: 1.0',
      'Release: 1',
      'Summary: clientpkgs appliance test',
      'License: MIT',
      'BuildArch: noarch',
      'AutoReqProv: no',
      '%description',
      'clientpkgs appliance test',
      '%install',
      'mkdir -p %{buildroot}/usr/bin %{buildroot}/opt/cw/cw-node',
      'printf "#!/bin/sh\\necho agent\\n" > %{buildroot}/usr/bin/cw-status-updater',
      'head -c 3000000 /dev/urandom > %{buildroot}/opt/cw/cw-node/data.bin',
      '%post',
      'echo enabled',
      '%triggerin -- bash',
      'echo trigger',
      '%files',
      '%attr(0755,root,root) /usr/bin/cw-status-updater',
      '/opt/cw/cw-node',
      '',
    ].join('\n'),
  );
  await execa('rpmbuild', ['-bb', '--define', `_topdir ${dir}`, '--define', '_binary_payload w6.xzdio', '--define', '__os_install_post %{nil}', spec], {
    stdin: 'ignore',
  });
  return join(dir, 'RPMS', 'noarch', 'cw-node-1.0-1.noarch.rpm');
}

/** GET `rawPath` on the head node over HTTP from `from`, exactly as written. */
function get(rawPath: string, from: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HEAD_IP, port: 80, path: rawPath, localAddress: from, timeout: 120_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${rawPath}: no answer in 120 s`)));
    req.on('error', reject);
    req.end();
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test.before(async () => {
  await cleanup();
  rpm = await buildRpm(join(top, 'rpmbuild'));
  await startOnTestBridge({ name: NAME, net: NET, subnet: SUBNET, headIp: HEAD_IP, storage, admin });
  for (let i = 0; i < NODES; i++) await execa('ip', ['addr', 'add', `${nodeIp(i)}/24`, 'dev', NET]);
  copyFileSync(rpm, join(storage, 'clientpkgs', 'rpm', 'cw-node-1.0-1.noarch.rpm'));
  mkdirSync(join(storage, 'clientpkgs', 'deb'), { recursive: true });
  writeFileSync(join(storage, 'clientpkgs', 'deb', 'cw-deb-only_1.0_amd64.deb'), '!<arch>\n');
});

test.after.always(async () => {
  await cleanup();
  rmSync(top, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

test.serial(`${NODES} nodes asking at once for a never-converted RPM get identical TARs from one conversion`, async (t) => {
  const replies = await Promise.all(Array.from({ length: NODES }, (_, i) => get('/api/v1/install/client/download/tar/cw-node', nodeIp(i))));
  t.deepEqual([...new Set(replies.map((r) => r.status))], [200], replies.find((r) => r.status !== 200)?.body.toString());
  t.deepEqual([...new Set(replies.map((r) => sha256(r.body)))].length, 1);
  const cached = readdirSync(join(storage, 'clientpkgs', 'tar'));
  t.deepEqual(cached, [`${sha256(readFileSync(rpm))}.tar.gz`]);
  // The log reaches its file a few milliseconds after the line is written.
  const conversionLines = () => readFileSync(join(storage, 'logs', 'api.log'), 'utf8').split('\n').filter((l) => l.includes('converted to TAR'));
  await waitFor(async () => conversionLines().length > 0, 10_000);
  t.is(conversionLines().length, 1, conversionLines().join('\n'));
  // The conversion depends only on the RPM: the appliance's TAR is byte for byte the one made here.
  const here = await mkdtemp(join(tmpdir(), 'cwcp-here-'));
  try {
    const local = await new RpmTarCache(here).tarFor(rpm);
    t.is(sha256(readFileSync(local.path)), sha256(replies[0]!.body));
  } finally {
    await rm(here, { recursive: true, force: true });
  }
});

test.serial('names that could reach outside clientpkgs/ are refused; a DEB-only name is refused with the reason', async (t) => {
  const cases: [string, number[]][] = [
    ['/api/v1/install/client/download/tar/..%2f..%2fsecrets%2fdb-password', [400]],
    ['/api/v1/install/client/download/tar/%2e%2e', [400]],
    ['/api/v1/install/client/download/tar/cw-node%00', [400]],
    ['/api/v1/install/client/download/tar/.hidden', [400]],
    [`/api/v1/install/client/download/tar/${'a'.repeat(4096)}`, [414]],
    ['/api/v1/install/client/download/tar/../../secrets/db-password', [404]],
    ['/api/v1/install/client/download/tar/no-such-package', [404]],
    ['/api/v1/install/client/download/zip/cw-node', [404]],
  ];
  for (const [path, statuses] of cases) {
    const res = await get(path, nodeIp(0));
    t.true(statuses.includes(res.status), `${path.slice(0, 80)}: ${res.status} ${res.body.toString().slice(0, 200)}`);
    t.false(res.body.toString().includes('db-password') && res.status === 200, 'nothing from secrets/');
  }
  const deb = await get('/api/v1/install/client/download/tar/cw-deb-only', nodeIp(1));
  t.is(deb.status, 422);
  t.regex(JSON.parse(deb.body.toString()).error, /cannot be converted to TAR files/);
});

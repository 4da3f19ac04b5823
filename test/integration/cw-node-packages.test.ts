// The cw-node packages in the real appliance: built into the image, in STORAGE/clientpkgs at first start
// byte for byte what scripts/build-client-pkgs.sh builds here, downloadable through nginx as nodes ask
// (download/rpm/cw-node, download/deb/cw-node), listed by `cw-clusterctl clientpkgs ls`; hostile names
// refused.
import test from 'ava';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { AdminSession, repoRoot, sh, startOnTestBridge, tempDir } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const NET = 'cwnp0';
const SUBNET = '10.213.33.0/24';
const HEAD_IP = '10.213.33.10';
const NAME = 'cwit-cw-node-pkgs';
const top = tempDir('cwnp');
const storage = join(top, 'cw_container_storage');
const home = tempDir('cwnp-home');
const admin = new AdminSession(home, `https://${HEAD_IP}/api/v1`);
const version = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version as string;
const RPM = `cw-node-${version}-1.noarch.rpm`;
const DEB = `cw-node_${version}-1_all.deb`;
let built = { rpm: '', deb: '' };

async function cleanup(): Promise<void> {
  await sh('docker', ['rm', '-f', NAME], { reject: false });
  await sh('docker', ['network', 'rm', NET], { reject: false });
  admin.close();
}

/** GET `rawPath` on the head node over plain HTTP, exactly as written. */
function get(rawPath: string): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HEAD_IP, port: 80, path: rawPath, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${rawPath}: no answer in 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test.before(async () => {
  await cleanup();
  const { stdout } = await execa('bash', [join(repoRoot, 'scripts', 'build-client-pkgs.sh'), '--out', join(top, 'pkgs')], { stdin: 'ignore' });
  const [rpm, deb] = stdout.trim().split('\n') as [string, string];
  built = { rpm, deb };
  await startOnTestBridge({ name: NAME, net: NET, subnet: SUBNET, headIp: HEAD_IP, storage, admin });
});

test.after.always(async () => {
  await cleanup();
  rmSync(top, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

test.serial('at first start STORAGE/clientpkgs holds the cw-node RPM and DEB, identical to a build here', (t) => {
  t.is(sha256(readFileSync(join(storage, 'clientpkgs', 'rpm', RPM))), sha256(readFileSync(built.rpm)));
  t.is(sha256(readFileSync(join(storage, 'clientpkgs', 'deb', DEB))), sha256(readFileSync(built.deb)));
});

test.serial('download/rpm/cw-node and download/deb/cw-node answer anonymously with those files', async (t) => {
  const rpm = await get('/api/v1/install/client/download/rpm/cw-node');
  t.is(rpm.status, 200);
  t.is(rpm.headers['content-type'], 'application/x-rpm');
  t.is(rpm.headers['content-disposition'], `attachment; filename="${RPM}"`);
  t.is(sha256(rpm.body), sha256(readFileSync(built.rpm)));
  const deb = await get('/api/v1/install/client/download/deb/cw-node?arch=x86_64');
  t.is(deb.status, 200);
  t.is(deb.headers['content-type'], 'application/vnd.debian.binary-package');
  t.is(deb.headers['content-disposition'], `attachment; filename="${DEB}"`);
  t.is(sha256(deb.body), sha256(readFileSync(built.deb)));
});

test.serial('cw-clusterctl clientpkgs ls lists them', async (t) => {
  const r = await admin.tool('clusterctl', ['clientpkgs', 'ls']);
  t.is(r.exitCode, 0, r.all);
  t.regex(r.stdout, new RegExp(`^cw-node +${version.replace(/\./g, '\\.')}-1 +rpm +noarch +\\d+ +no +${RPM.replace(/\./g, '\\.')}$`, 'm'));
  t.regex(r.stdout, new RegExp(`^cw-node +${version.replace(/\./g, '\\.')}-1 +deb +all +\\d+ +- +${DEB.replace(/\./g, '\\.')}$`, 'm'));
});

test.serial('hostile names are refused, unknown types 404', async (t) => {
  for (const type of ['rpm', 'deb']) {
    for (const name of ['..%2f..%2fsecrets%2fdb-password', '%2e%2e', 'cw-node%00', '.hidden']) {
      const res = await get(`/api/v1/install/client/download/${type}/${name}`);
      t.is(res.status, 400, `${type}/${name}: ${res.body.toString().slice(0, 200)}`);
    }
    t.is((await get(`/api/v1/install/client/download/${type}/${'a'.repeat(4096)}`)).status, 414);
  }
  t.is((await get('/api/v1/install/client/download/zip/cw-node')).status, 404);
});

// GET /api/v1/install/client/download/{rpm,deb}/NAME and the admins' listing, in-process, over the cw-node
// packages scripts/build-client-pkgs.sh builds with the real rpmbuild and dpkg-deb: the newest version by
// rpm's and dpkg's order, files that are not packages skipped and flagged, hostile names refused.
import test from 'ava';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { requireTools } from '../../helpers/tools.js';
import { rawGet, session } from './helpers.js';

const pkgTest = requireTools('rpmbuild', 'dpkg-deb');
const repo = join(import.meta.dirname, '..', '..', '..');
let work = '';
let rpm = '';
let deb = '';
/** A second, newer DEB (1.0-10 beats 1.0-9 and 0.1.0-1 by dpkg's order). */
let newerDeb = '';

pkgTest.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'cw-clientpkgs-dl-'));
  const { stdout } = await execa('bash', [join(repo, 'scripts', 'build-client-pkgs.sh'), '--out', join(work, 'out')], { stdin: 'ignore' });
  [rpm, deb] = stdout.trim().split('\n').slice(-2) as [string, string];
  // The same package, repacked under a newer version.
  const root = join(work, 'repack');
  await execa('dpkg-deb', ['-R', deb, root]);
  const control = join(root, 'DEBIAN', 'control');
  await writeFile(control, (await readFile(control, 'utf8')).replace(/^Version: .*$/m, 'Version: 1.0-10'));
  newerDeb = join(work, 'cw-node_1.0-10_all.deb');
  await execa('dpkg-deb', ['--root-owner-group', '-b', root, newerDeb], { stdin: 'ignore' });
});

test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function setup(t: Parameters<typeof session>[0]) {
  const s = await session(t);
  const dirs = { rpm: s.store.paths.clientRpmDir, deb: s.store.paths.clientDebDir, tar: s.store.paths.clientTarDir };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  const get = async (url: string, from = '10.0.0.7') => {
    const res = await s.api.inject({ method: 'GET', url: `/api/v1${url}`, remoteAddress: from });
    return { status: res.statusCode, body: res.rawPayload, headers: res.headers };
  };
  return { ...s, dirs, get };
}

pkgTest('download/rpm and download/deb answer anonymously with the newest package, its type and file name', async (t) => {
  const s = await setup(t);
  await copyFile(rpm, join(s.dirs.rpm, 'cw-node-0.1.0-1.noarch.rpm'));
  await copyFile(deb, join(s.dirs.deb, 'cw-node_0.1.0-1_all.deb'));
  await copyFile(deb, join(s.dirs.deb, 'cw-node_1.0-9_all.deb'));
  await copyFile(newerDeb, join(s.dirs.deb, 'cw-node_1.0-10_all.deb'));
  // Named as the newest, but its control file says 0.1.0-1: the control file decides.
  await copyFile(deb, join(s.dirs.deb, 'cw-node_99.0-1_all.deb'));

  const r = await s.get('/install/client/download/rpm/cw-node');
  t.is(r.status, 200);
  t.is(r.headers['content-type'], 'application/x-rpm');
  t.is(r.headers['content-disposition'], 'attachment; filename="cw-node-0.1.0-1.noarch.rpm"');
  t.is(sha256(r.body), sha256(await readFile(rpm)));

  const d = await s.get('/install/client/download/deb/cw-node?arch=x86_64');
  t.is(d.status, 200);
  t.is(d.headers['content-type'], 'application/vnd.debian.binary-package');
  t.is(d.headers['content-disposition'], 'attachment; filename="cw-node_1.0-10_all.deb"');
  t.is(sha256(d.body), sha256(await readFile(newerDeb)));

  t.is((await s.get('/install/client/download/deb/nothing')).status, 404);
  t.is((await s.get('/install/client/download/rpm/nothing')).status, 404);
});

pkgTest('a file that is not a package is skipped by downloads and flagged invalid in the listing', async (t) => {
  const s = await setup(t);
  await copyFile(deb, join(s.dirs.deb, 'cw-node_0.1.0-1_all.deb'));
  // Named as newer, but not DEBs / RPMs inside.
  await writeFile(join(s.dirs.deb, 'cw-node_9.9-1_all.deb'), '#!/bin/sh\necho not a deb\n');
  await writeFile(join(s.dirs.deb, 'cw-node_9.8-1_all.deb'), '!<arch>\nsomething-else   ');
  await writeFile(join(s.dirs.rpm, 'cw-node-9.9-1.noarch.rpm'), 'not an rpm either');
  await copyFile(rpm, join(s.dirs.rpm, 'cw-node-0.1.0-1.noarch.rpm'));
  await writeFile(join(s.dirs.tar, 'mytool.tar.gz'), 'an admin TAR');

  const d = await s.get('/install/client/download/deb/cw-node');
  t.is(d.headers['content-disposition'], 'attachment; filename="cw-node_0.1.0-1_all.deb"');
  const r = await s.get('/install/client/download/rpm/cw-node');
  t.is(r.headers['content-disposition'], 'attachment; filename="cw-node-0.1.0-1.noarch.rpm"');
  // The converted TAR shows in the listing once it exists.
  t.is((await s.get('/install/client/download/tar/cw-node')).status, 200);

  t.is((await s.api.inject({ method: 'GET', url: '/api/v1/install/client/packages' })).statusCode, 401, 'admins only');
  const list = await s.call('GET', '/install/client/packages');
  t.is(list.status, 200);
  const rows = (list.body as { data: Record<string, unknown>[] }).data.map(({ size, ...rest }) => ({ ...rest, sized: (size as number) > 0 }) as Record<string, unknown>);
  t.deepEqual(rows, [
    { type: 'rpm', file: 'cw-node-0.1.0-1.noarch.rpm', name: 'cw-node', version: '0.1.0-1', arch: 'noarch', valid: true, tar_cached: true, sized: true },
    { type: 'rpm', file: 'cw-node-9.9-1.noarch.rpm', name: null, version: null, arch: null, valid: false, problem: String(rows[1]?.problem), sized: true },
    { type: 'deb', file: 'cw-node_0.1.0-1_all.deb', name: 'cw-node', version: '0.1.0-1', arch: 'all', valid: true, sized: true },
    { type: 'deb', file: 'cw-node_9.8-1_all.deb', name: null, version: null, arch: null, valid: false, problem: 'not a DEB: an ar member header is cut short', sized: true },
    { type: 'deb', file: 'cw-node_9.9-1_all.deb', name: null, version: null, arch: null, valid: false, problem: 'not a DEB: no ar archive magic', sized: true },
    { type: 'tar', file: 'mytool.tar.gz', name: 'mytool', version: null, arch: null, valid: true, sized: true },
  ]);
  t.regex(String(rows[1]?.problem), /^not an RPM: lead at byte \d+: /);
});

pkgTest('hostile names are 400 and unknown types 404 for the rpm and deb downloads too', async (t) => {
  const s = await setup(t);
  await copyFile(rpm, join(s.dirs.rpm, 'cw-node-0.1.0-1.noarch.rpm'));
  await writeFile(join(s.dirs.rpm, '..', 'secret.rpm'), 'x');
  await s.api.listen({ host: '127.0.0.1', port: 0 });
  const port = (s.api.server.address() as AddressInfo).port;
  for (const type of ['rpm', 'deb']) {
    for (const name of ['..', '%2e%2e', '%2E%2E', '..%2f..%2fsecrets%2fdb-password', 'cw-node%00', '.hidden', '..%2fsecret.rpm']) {
      const res = await rawGet(port, `/api/v1/install/client/download/${type}/${name}`);
      t.is(res.status, 400, `${type}/${name}`);
      t.false(res.body.includes(s.dirs.rpm));
    }
    // Past the router's parameter limit: Fastify's own 414.
    t.is((await rawGet(port, `/api/v1/install/client/download/${type}/${'a'.repeat(4096)}`)).status, 414);
  }
  t.is((await s.get('/install/client/download/zip/cw-node')).status, 404);
  t.is((await s.get('/install/client/download/%2e%2e/cw-node')).status, 404);
});

test('the OpenAPI document describes the downloads (anonymous) and the listing (admins)', async (t) => {
  const s = await session(t);
  const doc = (await s.api.inject('/api/v1/openapi.json')).json();
  const download = doc.paths['/install/client/download/{type}/{name}'].get;
  t.deepEqual(download.security, [], 'anonymous');
  t.regex(download.summary, /newest package NAME as it is/);
  t.deepEqual(download.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`).sort(), ['path:name', 'path:type', 'query:arch']);
  const list = doc.paths['/install/client/packages'].get;
  t.is(list.security, undefined, 'the global bearer/basic requirement');
  t.truthy(doc.paths['/install/client/download/tar/{name}']);
});

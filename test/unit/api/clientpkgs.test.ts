// GET /api/v1/install/client/download/tar/NAME in-process, over RPMs built with rpmbuild: the newest RPM
// by rpm's version order, converted once however many nodes ask at once; names that could reach outside
// clientpkgs/ refused; a DEB-only name and a corrupt RPM answered with why.
import test from 'ava';
import type { FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { gunzipSync } from 'node:zlib';
import type { ClientPackages } from '../../../src/appliance/clientpkgs/repository.js';
import { requireTools } from '../../helpers/tools.js';
import { apiWithTempStore, healthyReport, rawGet } from './helpers.js';
import type { ClientPkgRouteOptions } from '../../../src/appliance/api/routes/clientpkgs.js';

const rpmTest = requireTools('rpmbuild');
let work = '';
const built: Record<string, string> = {};

async function buildRpm(name: string, version: string): Promise<string> {
  const top = join(work, `top-${name}-${version}`);
  await mkdir(join(top, 'SPECS'), { recursive: true });
  const spec = join(top, 'SPECS', 'p.spec');
  await writeFile(
    spec,
    [
      `Name: ${name}`,
      `Version: ${version}`,
      'Release: 1',
      'Summary: download test',
      'License: MIT',
      'BuildArch: noarch',
      'AutoReqProv: no',
      '%description',
      'download test',
      '%install',
      `mkdir -p %{buildroot}/usr/share/${name}`,
      `echo "${name} ${version}" > %{buildroot}/usr/share/${name}/version`,
      '%post',
      'echo installed',
      '%files',
      `/usr/share/${name}`,
      '',
    ].join('\n'),
  );
  await execa('rpmbuild', ['-bb', '--define', `_topdir ${top}`, '--define', '__os_install_post %{nil}', spec], { stdin: 'ignore' });
  return join(top, 'RPMS', 'noarch', `${name}-${version}-1.noarch.rpm`);
}

rpmTest.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'cw-clientpkgs-api-'));
  for (const [name, version] of [
    ['cw-node', '1.9'],
    ['cw-node', '1.10'],
    ['cw-node', '1.10~rc1'],
    ['other', '2.0'],
  ] as const) {
    built[`${name}-${version}`] = await buildRpm(name, version);
  }
});

test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

interface Setup {
  api: FastifyInstance;
  /** The API's log lines. */
  lines: string[];
  get(url: string, from?: string): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }>;
  packages: () => ClientPackages;
  dirs: { rpm: string; deb: string; tar: string };
}

/** An API over a fresh storage whose clientpkgs/rpm holds the RPMs named. */
async function setup(t: { teardown(fn: () => unknown): void }, rpms: string[], clientPkgs: Omit<ClientPkgRouteOptions, 'paths'> = {}): Promise<Setup> {
  let packages: ClientPackages | undefined;
  const lines: string[] = [];
  const { api, store } = apiWithTempStore({
    supervisorHealth: async () => healthyReport,
    log: (line) => lines.push(line),
    clientPkgs: { ...clientPkgs, onPackages: (p) => (packages = p) },
  });
  t.teardown(() => api.close());
  await api.ready();
  const dirs = { rpm: store.paths.clientRpmDir, deb: store.paths.clientDebDir, tar: store.paths.clientTarDir };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  for (const key of rpms) await copyFile(built[key]!, join(dirs.rpm, `${key}.rpm`));
  return {
    api,
    lines,
    dirs,
    packages: () => packages!,
    async get(url, from = '10.0.0.7') {
      const res = await api.inject({ method: 'GET', url: `/api/v1${url}`, remoteAddress: from });
      return { status: res.statusCode, body: res.rawPayload, headers: res.headers };
    },
  };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The text of `member` in a .tar.gz, read with GNU tar. */
async function member(tarGz: Buffer, name: string): Promise<string> {
  const file = join(work, `m-${sha256(tarGz).slice(0, 12)}.tar.gz`);
  await writeFile(file, tarGz);
  const { stdout } = await execa('tar', ['-xzOf', file, name], { stdin: 'ignore' });
  return stdout;
}

rpmTest('the newest RPM of a name is served as a TAR, anonymously, and converted only once', async (t) => {
  const s = await setup(t, ['cw-node-1.9', 'cw-node-1.10', 'cw-node-1.10~rc1', 'other-2.0']);
  const res = await s.get('/install/client/download/tar/cw-node');
  t.is(res.status, 200);
  t.is(res.headers['content-type'], 'application/gzip');
  t.is(res.headers['content-disposition'], 'attachment; filename="cw-node-1.10-1.noarch.tar.gz"');
  t.is(Number(res.headers['content-length']), res.body.length);
  t.true(gunzipSync(res.body).length > 0);
  // 1.10 is newer than 1.9 and than 1.10~rc1 by rpm's rules.
  t.is(await member(res.body, 'pkg/usr/share/cw-node/version'), 'cw-node 1.10');
  t.is(JSON.parse(await member(res.body, 'pkg/manifest.json')).version, '1.10');
  t.is(await member(res.body, 'pkg/scripts/post'), '#!/bin/sh\necho installed');
  const again = await s.get('/install/client/download/tar/cw-node', '10.0.0.8');
  t.is(sha256(again.body), sha256(res.body));
  t.is(s.packages().tars.conversions, 1);
  t.is(res.headers.etag, again.headers.etag);
});

rpmTest('50 concurrent downloads of a never-converted RPM: one conversion, 50 identical files', async (t) => {
  const s = await setup(t, ['cw-node-1.10', 'other-2.0']);
  const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => s.get('/install/client/download/tar/cw-node', `10.0.1.${i + 1}`)));
  t.deepEqual(new Set(replies.map((r) => r.status)), new Set([200]));
  t.is(new Set(replies.map((r) => sha256(r.body))).size, 1);
  t.is(s.packages().tars.conversions, 1);
  t.is((await readdir(s.dirs.tar)).length, 1);
  t.deepEqual(
    s.lines.filter((l) => l.includes('converted to TAR')).map((l) => l.replace(/\(.*\)/, '')),
    [`cw-node-1.10.rpm converted to TAR ${(await readdir(s.dirs.tar))[0]} `],
  );
});

rpmTest('names that could reach outside clientpkgs/ are refused before any file is read', async (t) => {
  const s = await setup(t, ['cw-node-1.10']);
  await writeFile(join(s.dirs.rpm, '..', 'secret.rpm'), 'x');
  await s.api.listen({ host: '127.0.0.1', port: 0 });
  const port = (s.api.server.address() as AddressInfo).port;
  const cases: [string, number][] = [
    ['..', 400],
    ['%2e%2e', 400],
    ['%2E%2E', 400],
    ['..%2f..%2fsecrets%2fdb-password', 400],
    ['cw-node%00', 400],
    ['cw-node%2f..%2f..%2fsecret', 400],
    ['.hidden', 400],
    ['-rf', 400],
    ['name%20with%20space', 400],
    ['a'.repeat(100), 404],
    // Past the router's parameter limit (100): Fastify answers 414 URI Too Long itself.
    ['a'.repeat(101), 414],
    ['a'.repeat(4096), 414],
    ['../../secrets/db-password', 404],
    ['..%2f..%2fsecret.rpm', 400],
  ];
  for (const [name, status] of cases) {
    const res = await rawGet(port, `/api/v1/install/client/download/tar/${name}`);
    t.is(res.status, status, `${name.slice(0, 40)}: ${res.body.slice(0, 200)}`);
    t.false(res.body.includes(s.dirs.rpm), 'no storage path in the answer');
  }
  t.is((await s.get('/install/client/download/tar/cw-node?arch=sparc')).status, 400);
  t.is((await s.get('/install/client/download/zip/cw-node')).status, 404);
  t.deepEqual(await readdir(s.dirs.tar), []);
  t.is(s.packages().tars.conversions, 0);
});

rpmTest('an unknown name is 404, a DEB-only name 422 with the reason, a corrupt RPM 422 naming it, nothing cached', async (t) => {
  const s = await setup(t, ['cw-node-1.10']);
  const unknown = await s.get('/install/client/download/tar/nothing-here');
  t.is(unknown.status, 404);
  t.regex(JSON.parse(unknown.body.toString()).error, /no package nothing-here/);

  await writeFile(join(s.dirs.deb, 'cw-deb-only_1.0_amd64.deb'), '!<arch>\n');
  const deb = await s.get('/install/client/download/tar/cw-deb-only');
  t.is(deb.status, 422);
  t.regex(JSON.parse(deb.body.toString()).error, /DEB packages may be provided by the head node, but they cannot be converted to TAR files/);

  // A newer cw-node whose payload is damaged: its header is fine, so it is the newest.
  const good = await readFile(built['other-2.0']!);
  const damaged = Buffer.from(good);
  damaged[damaged.length - 20] = damaged[damaged.length - 20]! ^ 0xff;
  await writeFile(join(s.dirs.rpm, 'other.rpm'), damaged);
  const corrupt = await s.get('/install/client/download/tar/other');
  t.is(corrupt.status, 422);
  const message = JSON.parse(corrupt.body.toString()).error as string;
  t.regex(message, /^cannot convert package other to a TAR: other\.rpm: (payload|cpio archive) at byte \d+/);
  t.false(message.includes(s.dirs.rpm), 'no storage path in the answer');
  t.deepEqual(await readdir(s.dirs.tar), []);
});

rpmTest("an admin's own tar/NAME.tar.gz is served as it is", async (t) => {
  const s = await setup(t, ['cw-node-1.10']);
  await writeFile(join(s.dirs.tar, 'cw-node.tar.gz'), 'the admin made this');
  const res = await s.get('/install/client/download/tar/cw-node');
  t.is(res.status, 200);
  t.is(res.body.toString(), 'the admin made this');
  t.is(s.packages().tars.conversions, 0);
});

rpmTest('downloads are rate-limited per source', async (t) => {
  const s = await setup(t, ['cw-node-1.10'], { rate: { burst: 2, perSecond: 0.01 } });
  t.is((await s.get('/install/client/download/tar/cw-node', '10.0.0.9')).status, 200);
  t.is((await s.get('/install/client/download/tar/cw-node', '10.0.0.9')).status, 200);
  const limited = await s.get('/install/client/download/tar/cw-node', '10.0.0.9');
  t.is(limited.status, 429);
  t.truthy(limited.headers['retry-after']);
  t.is((await s.get('/install/client/download/tar/cw-node', '10.0.0.10')).status, 200);
});

// The same appliance through Podman's Docker-compatible socket, with the default host networking
// (on high ports, so the test machine's own services are left alone).
import test from 'ava';
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { storagePaths } from '../../src/lib/storage-layout.js';
import { ctl, engineExec, imageTarball, restartCommand, sh, tempDir } from './helpers.js';

const SOCKET = process.env.CW_PODMAN_SOCKET ?? '/run/podman/podman.sock';
const env = { DOCKER_HOST: `unix://${SOCKET}` };
const NAME = 'cwit-podman';
const PORTS = ['--http-port', '18080', '--https-port', '18443', '--ssh-port', '12200', '--tftp-port', '16969'];
const storage = join(tempDir('cwpod'), 'cw_container_storage');
const keyDir = tempDir('cwpod-key');
let imageRef = '';

test.before(async () => {
  await sh('podman', ['rm', '-f', NAME], { reject: false });
  await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'carol@test', '-f', join(keyDir, 'id_ed25519')]);
});
test.after.always(async () => {
  await sh('podman', ['rm', '-f', NAME], { reject: false });
});

test('img-load and img-ls through the Podman socket', async (t) => {
  const r = await ctl(['img-load', imageTarball()], { env });
  t.is(r.exitCode, 0, r.all);
  imageRef = /Loaded image: (\S+)/.exec(r.stdout)![1]!;
  const ls = await ctl(['img-ls'], { env });
  t.is(ls.exitCode, 0, ls.all);
  t.regex(ls.stdout, /cw-headnode/);
});

test('start (host networking), status, add-admin', async (t) => {
  const r = await ctl(['start', storage, imageRef, '--name', NAME, ...PORTS], { env });
  t.is(r.exitCode, 0, r.all);
  const st = await ctl(['status'], { env });
  t.regex(st.stdout, new RegExp(`${NAME}.*healthy`));
  const res = await execa('curl', ['-fsS', '--max-time', '5', 'http://127.0.0.1:18080/api/v1/health']);
  t.is((JSON.parse(res.stdout) as { data: { status: string } }).data.status, 'healthy');
  const add = await ctl(['add-admin', 'carol', `@${join(keyDir, 'id_ed25519.pub')}`, '--name', NAME], { env });
  t.is(add.exitCode, 0, add.all);
  const tc = await ctl(['tool-config', '--name', NAME], { env });
  t.regex(tc.stdout, /client\.base_url = https:\/\/[0-9.]+:18443\/api\/v1/);
  t.regex(tc.stdout, /client\.sslverify = sha256:[0-9A-F:]{95}\n/);
  const https = await execa('curl', ['-fsS', '--max-time', '5', '--cacert', storagePaths(storage).tlsCertFile, 'https://127.0.0.1:18443/api/v1/health']);
  t.is((JSON.parse(https.stdout) as { data: { status: string } }).data.status, 'healthy');
});

test('stop then the printed start command: state survives', async (t) => {
  writeFileSync(join(storagePaths(storage).imagesDir, 'marker.txt'), 'podman marker\n');
  const t0 = Date.now();
  const stop = await ctl(['stop', '--name', NAME], { env });
  const ms = Date.now() - t0;
  t.is(stop.exitCode, 0, stop.all);
  t.log(`podman stop took ${ms} ms`);
  t.true(ms < 5000);
  const again = await ctl(restartCommand(stop.stdout), { env });
  t.is(again.exitCode, 0, again.all);
  const admins = JSON.parse((await engineExec('podman', NAME, ['cw-appliance', 'admin-ls'])).stdout) as Array<{ name: string }>;
  t.deepEqual(admins.map((a) => a.name), ['carol']);
  t.is(readFileSync(join(storagePaths(storage).imagesDir, 'marker.txt'), 'utf8'), 'podman marker\n');
  const final = await ctl(['stop', '--name', NAME], { env });
  t.is(final.exitCode, 0, final.all);
});

// cw-modimg against the real appliance: build a Debian image with debootstrap, change it in a chroot,
// upload it, get it back through nginx; import a `docker save` archive; the uid-mismatch refusal.
// Needs root (chroot, mounts), debootstrap, squashfs-tools and network access to deb.debian.org.
import test from 'ava';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AdminSession, ctl, sh, tempDir, unmountUnder } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const NET = 'cwmi0';
const SUBNET = '10.213.13.0/24';
const HEAD_IP = '10.213.13.10';
const NAME = 'cwit-modimg';
const BASE_IMAGE = 'docker.io/library/debian:bookworm-slim';
const storage = join(tempDir('cwmi'), 'cw_container_storage');
const home = tempDir('cwmi-home');
const workspace = join(home, 'ws');
const admin = new AdminSession(home, `https://${HEAD_IP}/api/v1`, { 'modimg.workspace': workspace });
const archive = join(home, 'bookworm-slim.tar');

async function cleanup(): Promise<void> {
  await sh('docker', ['rm', '-f', NAME], { reject: false });
  await sh('docker', ['network', 'rm', NET], { reject: false });
  admin.close();
  // Never leave a chroot mount behind, even when a test failed half-way.
  await unmountUnder(workspace);
}

const tool = (name: string, args: string[], timeout = 120_000) => admin.tool(name, args, timeout);

const modimg = (args: string[], timeout = 600_000) => tool('modimg', args, timeout);

function manifest(): { images: Record<string, { uid: string | null; checksum: string | null; file: string | null }> } {
  return JSON.parse(readFileSync(join(workspace, 'manifest.json'), 'utf8'));
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

async function remoteImage(name: string): Promise<Record<string, unknown>> {
  const r = await tool('imgctl', ['-i', name, 'ls', '-L', '--json']);
  if (r.exitCode !== 0) throw new Error(r.all);
  return (JSON.parse(r.stdout) as Record<string, Record<string, unknown>>)[name] as Record<string, unknown>;
}

test.before(async () => {
  await cleanup();
  await sh('docker', ['network', 'create', '--subnet', SUBNET, '-o', `com.docker.network.bridge.name=${NET}`, NET]);
  await admin.open();
  const images = await sh('docker', ['images', '--filter', 'label=io.cw-headnode.appliance=true', '--format', '{{.Repository}}:{{.Tag}}']);
  const imageRef = images.stdout.split('\n').find((l) => l !== '' && !l.includes('<none>')) ?? '';
  const start = await ctl(['start', storage, imageRef, '--name', NAME, '--network', NET, '--ip', HEAD_IP, '--ssh-port', '22']);
  if (start.exitCode !== 0) throw new Error(start.all);
  const add = await ctl(['add-admin', 'alice', `@${admin.keyFile}.pub`, '--name', NAME]);
  if (add.exitCode !== 0) throw new Error(add.all);
  await admin.adopt(NAME);
  await sh('docker', ['save', '-o', archive, BASE_IMAGE], { timeout: 300_000 });
});

test.after.always(async () => {
  await cleanup();
  // The workspace holds unpacked roots and images (hundreds of MB): nothing stays behind.
  rmSync(home, { recursive: true, force: true });
  rmSync(dirname(storage), { recursive: true, force: true });
});

test.serial('--create builds a Debian image with debootstrap; --install, --query and --upload work on it', async (t) => {
  let started = Date.now();
  const create = await modimg(['--create', '--set-name', 'deb1']);
  t.is(create.exitCode, 0, create.all);
  t.log(`cw-modimg --create (debootstrap bookworm + kernel): ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.regex(create.all ?? '', /Building deb1 from .*: done in/);
  const root = join(workspace, 'roots/deb1');
  t.true(existsSync(join(root, 'usr/bin/curl')), 'curl for the node agent');
  t.regex(readFileSync(join(root, 'etc/os-release'), 'utf8'), /bookworm/);
  t.is(readFileSync(join(root, 'etc/machine-id'), 'utf8'), '', 'every node makes its own machine-id');

  started = Date.now();
  const install = await modimg(['-i', 'deb1', '--install', 'hello', '--query', 'hello']);
  t.is(install.exitCode, 0, install.all);
  t.regex(install.stdout, /^hello 2\.\d+/m);
  t.log(`--install hello: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.deepEqual(readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(workspace)), [], 'chroot mounts torn down');

  const missing = await modimg(['-i', 'deb1', '--query', 'no-such-package-here']);
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /^ERROR: not installed in image deb1: no-such-package-here$/m);

  started = Date.now();
  const upload = await modimg(['-i', 'deb1', '--upload']);
  t.is(upload.exitCode, 0, upload.all);
  t.log(`--upload (pack xz + upload): ${((Date.now() - started) / 1000).toFixed(1)} s; ${/uploaded deb1 \(.*\)/.exec(upload.stderr)?.[0]}`);
  t.log(upload.stderr.split('\n').filter((l) => /done in/.test(l)).join('; '));
  const local = manifest().images.deb1!;
  const remote = await remoteImage('deb1');
  t.is(remote.uid, local.uid);
  t.is(remote.checksum, local.checksum);
  const file = join(workspace, local.file!);
  t.is(await sha256(file), local.checksum ?? '');
  const sf = await execa('sfdisk', ['-l', file], { reject: false });
  if (sf.exitCode === 0) t.regex(sf.stdout, /2048\s+\d+\s+\d+\s+\S+\s+83 Linux/);

  // Served by nginx, byte for byte.
  const got = join(home, 'served.img');
  const curl = await execa('curl', ['-sf', '-o', got, `http://${HEAD_IP}/images/${local.uid}.img`], { reject: false });
  t.is(curl.exitCode, 0);
  t.is(await sha256(got), local.checksum ?? '');

  const again = await modimg(['-i', 'deb1', '--upload']);
  t.is(again.exitCode, 0, again.all);
  t.regex(again.stderr, /already up to date/);
});

test.serial('--freshen downloads the head node copy and unpacks it', async (t) => {
  const started = Date.now();
  const r = await modimg(['-i', 'deb1', '--freshen', '--query', 'hello']);
  t.is(r.exitCode, 0, r.all);
  t.regex(r.stderr, /Downloading deb1 \.\.\./);
  t.regex(r.stderr, /Unpacking deb1: done in/);
  t.regex(r.stdout, /^hello 2\./m);
  t.log(`--freshen (download + unpack): ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test.serial('--import docker-archive: of a docker save of debian:bookworm-slim is uploadable', async (t) => {
  const started = Date.now();
  const r = await modimg(['--import', `docker-archive:${archive}`, '--set-name', 'slim', '--exec', 'test -x /usr/bin/apt-get && test -L /lib64', '--upload']);
  t.is(r.exitCode, 0, r.all);
  t.log(`--import + pack + upload: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const remote = await remoteImage('slim');
  t.regex(String(remote.checksum), /^sha256:[0-9a-f]{64}$/);
  t.is(remote.checksum, manifest().images.slim!.checksum);

  const ls = await modimg(['ls']);
  t.is(ls.exitCode, 0, ls.all);
  t.regex(ls.stdout, /Local images[\s\S]*deb1[\s\S]*slim[\s\S]*Head node images[\s\S]*deb1[\s\S]*slim/);
});

test.serial('an upload to a re-made image of the same name is refused with the uid mismatch', async (t) => {
  const local = manifest().images.slim!;
  t.is((await tool('imgctl', ['-i', 'slim', 'rm'])).exitCode, 0);
  t.is((await tool('imgctl', ['create', 'name=slim'])).exitCode, 0);
  const remote = await remoteImage('slim');
  const r = await modimg(['-i', 'slim', '--exec', 'true', '--upload']);
  t.is(r.exitCode, 1, r.all);
  t.is(r.stderr.trim().split('\n').at(-1), `ERROR: local image slim has uid ${local.uid} but the head node's has ${remote.uid}; run cw-modimg -i slim --delete`);
  const del = await modimg(['-i', 'slim', '--delete']);
  t.is(del.exitCode, 0, del.all);
  t.false(existsSync(join(workspace, 'roots/slim')));
  const all = await modimg(['--all', '--delete']);
  t.is(all.exitCode, 0, all.all);
  t.deepEqual(manifest().images, {});
});

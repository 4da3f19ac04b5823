// Bad input at the host CLI: each is one `ERROR:` line, a non-zero exit, and nothing changed in the engine.
import test from 'ava';
import { createReadStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ctl, imageTarball, sh, tempDir } from './helpers.js';
import { startFakeEngine } from '../unit/containerctl/fake-engine.js';

// These suites are about Docker; the CLI would otherwise prefer a running Podman socket.
process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

async function engineState(): Promise<string> {
  const images = await sh('docker', ['images', '-q', '--no-trunc']);
  const containers = await sh('docker', ['ps', '-aq', '--no-trunc']);
  const sorted = (text: string) => text.split('\n').filter(Boolean).sort().join('\n');
  return `${sorted(images.stdout)}\n--\n${sorted(containers.stdout)}`;
}

function assertOneLineError(t: import('ava').ExecutionContext, r: Awaited<ReturnType<typeof ctl>>, pattern: RegExp) {
  t.not(r.exitCode, 0, r.all);
  t.regex(r.stderr, /^ERROR: /);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, pattern);
}

test('img-load of a missing file', async (t) => {
  const before = await engineState();
  assertOneLineError(t, await ctl(['img-load', '/nonexistent/cw-headnode.tar']), /not found/);
  t.is(await engineState(), before);
});

test('img-load of a corrupt file', async (t) => {
  const dir = tempDir('cwerr');
  const bad = join(dir, 'corrupt.tar');
  writeFileSync(bad, Buffer.alloc(64 * 1024, 0x5a));
  const before = await engineState();
  assertOneLineError(t, await ctl(['img-load', bad]), /image|archive|tar/i);
  t.is(await engineState(), before);
});

test('img-load with a wrong checksum loads nothing', async (t) => {
  const dir = tempDir('cwerr');
  const tar = join(dir, 'cw-headnode-copy.tar');
  // A truncated copy of the real tarball with the checksum of the real one: the check must catch it.
  const real = imageTarball();
  const head = readFileSync(real).subarray(0, 4 * 1024 * 1024);
  writeFileSync(tar, head);
  writeFileSync(`${tar}.sha256`, readFileSync(`${real}.sha256`, 'utf8').replace(/\S+$/m, 'cw-headnode-copy.tar'));
  const before = await engineState();
  assertOneLineError(t, await ctl(['img-load', tar]), /checksum/i);
  t.is(await engineState(), before);
});

test('start with a storage path that is a file', async (t) => {
  const dir = tempDir('cwerr');
  const file = join(dir, 'storage');
  writeFileSync(file, 'not a directory\n');
  const before = await engineState();
  assertOneLineError(t, await ctl(['start', file]), /not a directory|is a file/i);
  t.is(readFileSync(file, 'utf8'), 'not a directory\n');
  t.is(await engineState(), before);
});

test('a rootless engine is refused with the reason and the sysctl', async (t) => {
  const dir = tempDir('cwfake');
  mkdirSync(dir, { recursive: true });
  const engine = await startFakeEngine({ socketPath: join(dir, 'engine.sock'), rootless: true });
  try {
    const r = await ctl(['status'], { env: { DOCKER_HOST: `unix://${join(dir, 'engine.sock')}` } });
    assertOneLineError(t, r, /rootless/i);
    t.regex(r.stderr, /ip_unprivileged_port_start/);
    t.regex(r.stderr, /DHCP|ports below 1024/);
  } finally {
    await engine.close();
  }
});

test('the tarball checksum file matches the tarball', async (t) => {
  const tar = imageTarball();
  const hash = createHash('sha256');
  await new Promise<void>((res, rej) => createReadStream(tar).on('data', (c) => hash.update(c)).on('end', () => res()).on('error', rej));
  t.is(readFileSync(`${tar}.sha256`, 'utf8').split(/\s+/)[0], hash.digest('hex'));
});

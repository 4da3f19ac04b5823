import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EVICT_AFTER_MS,
  Workspace,
  checkUploadTarget,
  parseManifest,
  staleEntries,
  type Manifest,
  type ManifestEntry,
} from '../../../src/images/workspace.js';

function tmp(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cwws-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const NOW = Date.parse('2026-11-21T12:00:00Z');
const old = new Date(NOW - EVICT_AFTER_MS - 1000).toISOString();
const fresh = new Date(NOW - 60_000).toISOString();
const entry = (e: Partial<ManifestEntry>): ManifestEntry => ({ uid: 'u1', checksum: 'sha256:aa', file: 'u1.img', updated: old, ...e });

test('a missing manifest is an empty workspace; put/load round-trips through an atomic write', async (t) => {
  const ws = new Workspace(join(tmp(t), 'ws'), () => NOW);
  await ws.ensure();
  t.deepEqual(await ws.load(), { images: {} });
  await ws.put('img', { uid: 'abc', checksum: 'sha256:11', file: 'abc.img' });
  await ws.put('another', { uid: null, checksum: null, file: null, root: 'roots/another', modified: fresh });
  const text = readFileSync(ws.manifestPath, 'utf8');
  const doc = JSON.parse(text) as Manifest;
  t.deepEqual(Object.keys(doc.images), ['another', 'img'], 'sorted by name');
  t.deepEqual(doc.images.img, { uid: 'abc', checksum: 'sha256:11', file: 'abc.img', updated: new Date(NOW).toISOString() });
  t.deepEqual(await ws.load(), doc);
  t.deepEqual(readdirSync(ws.dir).sort(), ['manifest.json', 'roots'], 'no temporary files or lock left behind');
});

test('parseManifest refuses malformed files with the file name and the bad entries', (t) => {
  t.throws(() => parseManifest('{', '/ws/manifest.json'), { message: /^\/ws\/manifest\.json: not valid JSON/ });
  t.throws(() => parseManifest('[]', 'm.json'), { message: 'm.json: expected {"images": {...}}' });
  const bad = JSON.stringify({ images: { ok: entry({}), '../x': entry({}), esc: entry({ file: '../../etc/passwd' }), num: { uid: 1 } } });
  t.throws(() => parseManifest(bad, 'm.json'), { message: 'm.json: malformed entries: ../x, esc, num' });
});

test('staleEntries: only clean copies older than an hour that equal the remote image by uid, name and checksum', (t) => {
  const m: Manifest = {
    images: {
      same: entry({ uid: 'u1', checksum: 'sha256:aa' }),
      young: entry({ uid: 'u2', updated: fresh }),
      changedRemote: entry({ uid: 'u3', checksum: 'sha256:old' }),
      renamed: entry({ uid: 'u4' }),
      goneRemote: entry({ uid: 'u5' }),
      modified: entry({ uid: 'u6', modified: old }),
      neverUploaded: entry({ uid: null, checksum: 'sha256:aa' }),
    },
  };
  const remote = [
    { uid: 'u1', name: 'same', checksum: 'sha256:aa' },
    { uid: 'u2', name: 'young', checksum: 'sha256:aa' },
    { uid: 'u3', name: 'changedRemote', checksum: 'sha256:new' },
    { uid: 'u4', name: 'otherName', checksum: 'sha256:aa' },
    { uid: 'u6', name: 'modified', checksum: 'sha256:aa' },
  ];
  t.deepEqual(staleEntries(m, remote, NOW), ['same']);
});

test('checkUploadTarget reports a uid mismatch with the fix; a missing or matching remote is fine', (t) => {
  t.throws(() => checkUploadTarget('img', entry({ uid: 'local1' }), { uid: 'remote2', name: 'img', checksum: null }), {
    message: 'local image img has uid local1 but the head node\'s has remote2; run cw-modimg -i img --delete',
  });
  t.notThrows(() => checkUploadTarget('img', entry({ uid: 'u1' }), { uid: 'u1', name: 'img', checksum: null }));
  t.notThrows(() => checkUploadTarget('img', entry({ uid: 'u1' }), undefined));
  t.notThrows(() => checkUploadTarget('img', entry({ uid: null }), { uid: 'r', name: 'img', checksum: null }));
});

test('remove deletes the entry, the file and the unpacked root; evict removes stale ones', async (t) => {
  const ws = new Workspace(join(tmp(t), 'ws'), () => NOW);
  await ws.ensure();
  writeFileSync(join(ws.dir, 'u1.img'), 'x');
  mkdirSync(ws.rootPath('img'));
  writeFileSync(join(ws.rootPath('img'), 'f'), 'y');
  await ws.put('img', { uid: 'u1', checksum: 'sha256:aa', file: 'u1.img', root: 'roots/img', updated: old });
  await ws.put('keep', { uid: 'u2', checksum: 'sha256:bb', file: null });
  const stale = staleEntries(await ws.load(), [{ uid: 'u1', name: 'img', checksum: 'sha256:aa' }], NOW);
  t.deepEqual(await ws.evict(stale), ['img']);
  t.false(existsSync(join(ws.dir, 'u1.img')));
  t.false(existsSync(ws.rootPath('img')));
  t.deepEqual(Object.keys((await ws.load()).images), ['keep']);
  t.false(await ws.remove('img'), 'already gone');
});

test('invalid image names are refused before touching the disk', (t) => {
  const ws = new Workspace('/nonexistent');
  t.throws(() => ws.rootPath('../etc'), { message: /invalid image name/ });
  t.throws(() => ws.rootPath('a/b'), { message: /invalid image name/ });
});

test('the workspace lock: a dead holder is taken over, a live one blocks until the deadline', async (t) => {
  const ws = new Workspace(join(tmp(t), 'ws'));
  await ws.ensure();
  writeFileSync(join(ws.dir, '.lock'), '999999999\n');
  t.is(await ws.withLock(async () => 'ran'), 'ran');
  t.false(existsSync(join(ws.dir, '.lock')));
  writeFileSync(join(ws.dir, '.lock'), `${process.ppid}\n`);
  await t.throwsAsync(ws.withLock(async () => 'no', 300), { message: /in use by process/ });
  rmSync(join(ws.dir, '.lock'));
  t.is(await ws.withLock(() => ws.update(() => 'nested')), 'nested', 'the holder may update the manifest');
});

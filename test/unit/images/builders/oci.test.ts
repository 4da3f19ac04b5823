import test from 'ava';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tar from 'tar';
import { entryPath, importDockerArchive, parseImportSource, readWhiteouts } from '../../../../src/images/builders/oci.js';

function tmp(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cwoci-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes files (path -> content, or `-> target` for a symlink) under dir. */
function tree(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [p, content] of Object.entries(files)) {
    const full = join(dir, p);
    mkdirSync(dirname(full), { recursive: true });
    if (content.startsWith('-> ')) symlinkSync(content.slice(3), full);
    else if (p.endsWith('/')) mkdirSync(full, { recursive: true });
    else writeFileSync(full, content);
  }
}

/** A `docker save`-style archive: manifest.json plus one tar per layer, in order. */
async function dockerArchive(dir: string, layers: Array<Record<string, string>>, layout: 'legacy' | 'oci' = 'legacy'): Promise<string> {
  const stage = join(dir, 'archive');
  mkdirSync(stage, { recursive: true });
  const names: string[] = [];
  for (const [i, files] of layers.entries()) {
    const src = join(dir, `layer${i}`);
    tree(src, files);
    const name = layout === 'legacy' ? `l${i}/layer.tar` : `blobs/sha256/${String(i).padStart(64, '0')}`;
    mkdirSync(dirname(join(stage, name)), { recursive: true });
    await tar.c({ file: join(stage, name), cwd: src, portable: true }, readdirSync(src));
    names.push(name);
  }
  writeFileSync(join(stage, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['test/img:1'], Layers: names }]));
  writeFileSync(join(stage, 'config.json'), '{}');
  const file = join(dir, 'image.tar');
  await tar.c({ file, cwd: stage }, readdirSync(stage));
  return file;
}

test('parseImportSource: docker-archive:FILE or an engine image name', (t) => {
  t.deepEqual(parseImportSource('docker-archive:/tmp/x.tar'), { kind: 'archive', file: '/tmp/x.tar' });
  t.deepEqual(parseImportSource('docker.io/library/debian:bookworm-slim'), { kind: 'engine', image: 'docker.io/library/debian:bookworm-slim' });
  t.throws(() => parseImportSource('docker-archive:'), { message: /needs a file name/ });
  t.throws(() => parseImportSource('oci-archive:/x'), { message: /only docker-archive/ });
  t.throws(() => parseImportSource('bad name;rm'), { message: /not an image name/ });
});

test('entryPath normalizes and refuses escapes', (t) => {
  t.is(entryPath('./usr/bin/'), 'usr/bin');
  t.is(entryPath('/etc/x'), 'etc/x');
  t.is(entryPath('./'), null);
  t.throws(() => entryPath('../etc/passwd'), { message: /outside the image/ });
});

test('layers stack in order; .wh.NAME deletes, .wh..wh..opq hides lower contents, markers never land', async (t) => {
  const dir = tmp(t);
  const file = await dockerArchive(dir, [
    { 'etc/a': 'A', 'etc/b': 'B', 'opt/dir/x': 'x', 'opt/dir/sub/y': 'y', 'usr/keep': 'k', 'var/gone/file': 'g', 'bin': '-> usr/bin', 'usr/bin/sh': 'sh1' },
    { 'etc/.wh.a': '', 'opt/dir/.wh..wh..opq': '', 'opt/dir/z': 'z', 'var/.wh.gone': '', 'usr/new': 'n', 'usr/bin/sh': 'sh2' },
    { 'etc/a': 'A again' },
  ]);
  const root = join(dir, 'root');
  const lines: string[] = [];
  const r = await importDockerArchive(file, root, dir, (l) => lines.push(l));
  t.is(r.layers, 3);
  t.is(readFileSync(join(root, 'etc/a'), 'utf8'), 'A again', 'a later layer may re-create a deleted file');
  t.is(readFileSync(join(root, 'etc/b'), 'utf8'), 'B');
  t.deepEqual(readdirSync(join(root, 'opt/dir')), ['z']);
  t.deepEqual(readdirSync(join(root, 'var')), []);
  t.is(readFileSync(join(root, 'usr/keep'), 'utf8'), 'k');
  t.is(readFileSync(join(root, 'usr/new'), 'utf8'), 'n');
  t.is(readFileSync(join(root, 'bin/sh'), 'utf8'), 'sh2', 'the symlink survives and points at the replaced file');
  t.false(existsSync(join(root, 'etc/.wh.a')));
  t.false(existsSync(join(root, 'opt/dir/.wh..wh..opq')));
  t.regex(lines.join('\n'), /layer 3\/3/);
  t.deepEqual(readdirSync(dir).filter((n) => n.startsWith('import-')), [], 'scratch space removed');
});

test('absolute symlink targets stay absolute; modes (sticky /tmp) are the archive\'s', async (t) => {
  const dir = tmp(t);
  const src = join(dir, 'l0');
  tree(src, { 'usr/lib/ld.so': 'loader', 'lib64/ld-linux.so': '-> /usr/lib/ld.so', 'tmp/': '' });
  chmodSync(join(src, 'tmp'), 0o1777);
  const stage = join(dir, 'archive');
  mkdirSync(join(stage, 'l0'), { recursive: true });
  await tar.c({ file: join(stage, 'l0/layer.tar'), cwd: src }, readdirSync(src));
  writeFileSync(join(stage, 'manifest.json'), JSON.stringify([{ Layers: ['l0/layer.tar'] }]));
  const file = join(dir, 'image.tar');
  await tar.c({ file, cwd: stage }, ['manifest.json', 'l0']);
  const root = join(dir, 'root');
  await importDockerArchive(file, root, dir);
  t.is(readlinkSync(join(root, 'lib64/ld-linux.so')), '/usr/lib/ld.so');
  t.is(statSync(join(root, 'tmp')).mode & 0o7777, 0o1777);
});

test('the OCI-layout variant of docker save (blobs/sha256/...) imports the same way', async (t) => {
  const dir = tmp(t);
  const file = await dockerArchive(dir, [{ 'etc/os-release': 'ID=test\n' }, { 'etc/.wh.os-release': '', 'etc/issue': 'hi' }], 'oci');
  const root = join(dir, 'root');
  await importDockerArchive(file, root, dir);
  t.deepEqual(readdirSync(join(root, 'etc')), ['issue']);
});

test('whiteouts never reach through a symlink to files outside the root', async (t) => {
  const dir = tmp(t);
  const outside = join(dir, 'outside');
  tree(outside, { victim: 'keep me' });
  const file = await dockerArchive(dir, [{ escape: `-> ${outside}` }, { 'escape/.wh.victim': '' }]);
  const root = join(dir, 'root');
  await importDockerArchive(file, root, dir).catch(() => {});
  t.is(readFileSync(join(outside, 'victim'), 'utf8'), 'keep me');
});

test('readWhiteouts lists what a layer removes', async (t) => {
  const dir = tmp(t);
  tree(join(dir, 'l'), { '.wh.top': '', 'a/b/.wh.c': '', 'd/.wh..wh..opq': '', 'plain': 'p' });
  const layer = join(dir, 'l.tar');
  await tar.c({ file: layer, cwd: join(dir, 'l') }, readdirSync(join(dir, 'l')));
  const wh = await readWhiteouts(layer);
  t.deepEqual(wh.deleted.sort(), ['a/b/c', 'top']);
  t.deepEqual(wh.opaque, ['d']);
});

test('archives that are not docker-archives are refused clearly', async (t) => {
  const dir = tmp(t);
  tree(join(dir, 's'), { 'hello.txt': 'x' });
  const file = join(dir, 'plain.tar');
  await tar.c({ file, cwd: join(dir, 's') }, ['hello.txt']);
  await t.throwsAsync(importDockerArchive(file, join(dir, 'root'), dir), { message: /not a docker-archive: manifest\.json is missing/ });
  writeFileSync(join(dir, 'garbage.tar'), 'not a tar at all'.repeat(100));
  await t.throwsAsync(importDockerArchive(join(dir, 'garbage.tar'), join(dir, 'root2'), dir), { message: /garbage\.tar|docker-archive/ });
});

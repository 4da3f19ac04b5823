import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import test from 'ava';
import * as tar from 'tar';
import { ArchiveProblem, inspectArchive, isTarHeader } from '../../../src/host/containerctl/img-load/archive.js';

function workdir(): string {
  return mkdtempSync(join(tmpdir(), 'cw-archive-'));
}

/** A miniature `docker save` archive: config JSON, manifest.json, one layer. */
async function dockerSave(dir: string, labels: Record<string, string> | null, tags = ['cw-headnode:0.1.0']): Promise<string> {
  const src = join(dir, 'src');
  mkdirSync(join(src, 'layer1'), { recursive: true });
  const configName = `${'c'.repeat(64)}.json`;
  writeFileSync(join(src, configName), JSON.stringify({ config: { Labels: labels } }));
  writeFileSync(join(src, 'layer1', 'layer.tar'), Buffer.alloc(3000, 1));
  writeFileSync(join(src, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: tags, Layers: ['layer1/layer.tar'] }]));
  const file = join(dir, 'image.tar');
  await tar.c({ file, cwd: src, portable: true }, [configName, 'layer1', 'manifest.json']);
  return file;
}

test('a docker save archive: tags and labels read without loading it', async (t) => {
  const dir = workdir();
  try {
    const file = await dockerSave(dir, { 'io.cw-headnode.appliance': 'true' });
    t.deepEqual(await inspectArchive(file), {
      kind: 'docker-archive',
      images: [{ repoTags: ['cw-headnode:0.1.0'], labels: { 'io.cw-headnode.appliance': 'true' } }],
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an image without labels shows an empty label set (so it can be refused before loading)', async (t) => {
  const dir = workdir();
  try {
    const result = await inspectArchive(await dockerSave(dir, null, ['debian:bookworm-slim']));
    t.deepEqual(result, { kind: 'docker-archive', images: [{ repoTags: ['debian:bookworm-slim'], labels: {} }] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a tar without manifest.json, a text file and a truncated tar are not image archives', async (t) => {
  const dir = workdir();
  try {
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    const plain = join(dir, 'plain.tar');
    await tar.c({ file: plain, cwd: dir }, ['notes.txt']);
    await t.throwsAsync(inspectArchive(plain), { instanceOf: ArchiveProblem, message: 'a tar file without manifest.json' });
    await t.throwsAsync(inspectArchive(join(dir, 'notes.txt')), { instanceOf: ArchiveProblem, message: 'not a tar file' });
    const full = await dockerSave(dir, {});
    const cut = join(dir, 'cut.tar');
    writeFileSync(cut, readFileSync(full).subarray(0, 2048));
    await t.throwsAsync(inspectArchive(cut), { instanceOf: ArchiveProblem, message: 'the tar file is truncated' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('compressed archives are recognised and left to the load', async (t) => {
  const dir = workdir();
  try {
    const gz = join(dir, 'image.tar.gz');
    writeFileSync(gz, gzipSync(readFileSync(await dockerSave(dir, {}))));
    t.deepEqual(await inspectArchive(gz), { kind: 'compressed', format: 'gzip' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tar header checksum', (t) => {
  t.false(isTarHeader(Buffer.alloc(512)));
  t.false(isTarHeader(Buffer.alloc(100)));
});

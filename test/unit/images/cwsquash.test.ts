import test from 'ava';
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CwsquashFormatError,
  PARTITION_OFFSET,
  buildMbr,
  createCwsquash,
  extractCwsquash,
  listCwsquash,
  parseMbr,
  readCwsquashLayout,
  sha256File,
  type CwsquashLayout,
} from '../../../src/images/cwsquash/index.js';
import { requireTools, toolPath } from '../../helpers/tools.js';

const squashTest = requireTools('mksquashfs', 'unsquashfs');
const sfdiskTest = requireTools('mksquashfs', 'unsquashfs', 'sfdisk');
const loopMountTest = requireTools('mksquashfs', 'mount', 'root');

function tmp(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cwsq-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function sampleTree(dir: string): void {
  mkdirSync(join(dir, 'etc'), { recursive: true });
  mkdirSync(join(dir, 'usr/bin'), { recursive: true });
  writeFileSync(join(dir, 'etc/hostname'), 'node\n');
  writeFileSync(join(dir, 'usr/bin/tool'), Buffer.alloc(300_000, 'x'));
  symlinkSync('usr/bin', join(dir, 'bin'));
}

test('buildMbr: one Linux partition at LBA 2048 with the given size and the 0x55AA signature', (t) => {
  const mbr = buildMbr(40);
  t.is(mbr.length, 512);
  t.is(mbr[0x1fe], 0x55);
  t.is(mbr[0x1ff], 0xaa);
  t.is(mbr[0x1be + 4], 0x83);
  t.is(mbr.readUInt32LE(0x1be + 8), 2048);
  t.is(mbr.readUInt32LE(0x1be + 12), 40);
  for (let i = 1; i < 4; i++) t.deepEqual(mbr.subarray(0x1be + 16 * i, 0x1be + 16 * (i + 1)), Buffer.alloc(16), `entry ${i} empty`);
  t.deepEqual(parseMbr(mbr, PARTITION_OFFSET + 40 * 512), { offset: 1048576, size: 40 * 512, startLba: 2048, sectors: 40 });
});

test('buildMbr refuses sizes an MBR cannot hold', (t) => {
  t.throws(() => buildMbr(0), { instanceOf: RangeError });
  t.throws(() => buildMbr(1.5), { instanceOf: RangeError });
  t.throws(() => buildMbr(0xffffffff), { message: /2 TiB/ });
});

test('parseMbr explains what is wrong with files that are not cwsquash', (t) => {
  const good = buildMbr(8);
  const size = PARTITION_OFFSET + 8 * 512;
  t.throws(() => parseMbr(Buffer.alloc(100), 100), { instanceOf: CwsquashFormatError, message: /too short/ });
  t.throws(() => parseMbr(Buffer.alloc(512), size), { message: /MBR signature 0x55AA missing/ });
  const bare = Buffer.alloc(512);
  bare.write('hsqs', 0, 'latin1');
  t.throws(() => parseMbr(bare, size), { message: /bare squashfs/ });
  const fat = Buffer.from(good);
  fat[0x1be + 4] = 0x0c;
  t.throws(() => parseMbr(fat, size), { message: /partition type 0x0c, expected 0x83/ });
  const gpt = Buffer.from(good);
  gpt[0x1be + 4] = 0xee;
  t.throws(() => parseMbr(gpt, size), { message: /GPT/ });
  const two = Buffer.from(good);
  good.copy(two, 0x1ce, 0x1be, 0x1ce);
  t.throws(() => parseMbr(two, size), { message: /2 partitions/ });
  const empty = Buffer.alloc(512);
  empty[0x1fe] = 0x55;
  empty[0x1ff] = 0xaa;
  t.throws(() => parseMbr(empty, size), { message: /0 partitions/ });
  t.throws(() => parseMbr(good, size - 512), { message: /truncated: the partition ends at byte 1052672 but the file has 1052160 bytes/ });
});

sfdiskTest('createCwsquash: sfdisk sees one Linux partition at 1 MiB; unsquashfs -o lists the files; extract round-trips', async (t) => {
  const dir = tmp(t);
  const src = join(dir, 'root');
  sampleTree(src);
  const file = join(dir, 'image.img');
  const seen: number[] = [];
  const layout = await createCwsquash(src, file, { compression: 'xz', onProgress: (p) => seen.push(p.percent) });
  t.is(layout.offset, 1048576);
  const size = statSync(file).size;
  t.is(size % 512, 0, 'padded to a whole sector');
  t.is(size, layout.offset + layout.size);
  t.deepEqual(await readCwsquashLayout(file), layout);
  t.true(seen.length > 0 && seen.at(-1) === 100, `progress reported: ${seen.join(',')}`);
  const head = Buffer.alloc(4);
  const fd = openSync(file, 'r');
  readSync(fd, head, 0, 4, layout.offset);
  closeSync(fd);
  t.is(head.toString('latin1'), 'hsqs');

  const sf = await execa(toolPath('sfdisk'), ['-l', file]);
  const line = sf.stdout.split('\n').find((l) => l.startsWith(`${file}1`)) ?? '';
  t.regex(line, new RegExp(`^${file}1\\s+2048\\s+${2047 + layout.sectors}\\s+${layout.sectors}\\s.*\\b83\\s+Linux`), sf.stdout);
  const dump = await execa(toolPath('sfdisk'), ['--dump', file]);
  t.regex(dump.stdout, /start=\s*2048, size=\s*\d+, type=83/);

  const ls = await execa('unsquashfs', ['-o', String(layout.offset), '-l', file]);
  t.regex(ls.stdout, /squashfs-root\/etc\/hostname/);
  t.true((await listCwsquash(file)).includes('usr/bin/tool'));

  const out = join(dir, 'out');
  await extractCwsquash(file, out);
  t.is(readFileSync(join(out, 'etc/hostname'), 'utf8'), 'node\n');
  t.is(statSync(join(out, 'usr/bin/tool')).size, 300_000);
  await t.throwsAsync(extractCwsquash(file, out), { message: /not empty/ });
});

/** A zstd cwsquash of the sample tree with a `tmp/` whose contents are excluded. */
async function zstdImage(t: { teardown: (f: () => void) => void }): Promise<{ file: string; layout: CwsquashLayout; dir: string }> {
  const dir = tmp(t);
  const src = join(dir, 'root');
  sampleTree(src);
  mkdirSync(join(src, 'tmp'));
  writeFileSync(join(src, 'tmp/scratch'), 'x');
  const file = join(dir, 'z.img');
  const layout = await createCwsquash(src, file, { compression: 'zstd', exclude: ['tmp/*'] });
  return { file, layout, dir };
}

squashTest('createCwsquash: zstd and excludes', async (t) => {
  const { file } = await zstdImage(t);
  const names = await listCwsquash(file);
  t.true(names.includes('tmp'), 'the directory stays');
  t.false(names.includes('tmp/scratch'), 'its contents do not');
});

loopMountTest('createCwsquash: the image loop-mounts at the partition offset', async (t) => {
  const { file, layout, dir } = await zstdImage(t);
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  const m = await execa(toolPath('mount'), ['-o', `loop,ro,offset=${layout.offset}`, file, mnt], { reject: false, all: true });
  t.is(m.exitCode, 0, `loop mount: ${m.all}`);
  if (m.exitCode !== 0) return;
  try {
    t.is(readFileSync(join(mnt, 'etc/hostname'), 'utf8'), 'node\n');
  } finally {
    await execa('umount', [mnt]);
  }
});

test('readCwsquashLayout: clear errors for missing files and partitions without squashfs', async (t) => {
  const dir = tmp(t);
  await t.throwsAsync(readCwsquashLayout(join(dir, 'nope.img')), { message: /no such file/ });
  const junk = join(dir, 'junk.img');
  const buf = Buffer.alloc(PARTITION_OFFSET + 4096);
  buildMbr(8).copy(buf, 0);
  writeFileSync(junk, buf);
  await t.throwsAsync(readCwsquashLayout(junk), { message: /holds no squashfs/ });
});

squashTest('readCwsquashLayout: a bare squashfs is named as such', async (t) => {
  const dir = tmp(t);
  const src = join(dir, 'r');
  sampleTree(src);
  const bare = join(dir, 'bare.sqfs');
  await execa('mksquashfs', [src, bare, '-noappend', '-quiet', '-no-progress']);
  await t.throwsAsync(readCwsquashLayout(bare), { instanceOf: CwsquashFormatError, message: /bare squashfs/ });
});

test('sha256File gives the API form sha256:<hex>', async (t) => {
  const dir = tmp(t);
  const f = join(dir, 'f');
  writeFileSync(f, 'abc');
  t.is(await sha256File(f), 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { parseChecksumFile, sha256File } from '../../../src/host/containerctl/img-load/checksum.js';

const HEX = 'c378846898a292172f120fcd7bcb4e6b2872002c5f9286994c7cbcc280b6da72';

test('sha256sum format: HEX, two spaces, NAME', (t) => {
  t.deepEqual(parseChecksumFile(`${HEX}  cw-headnode-0.1.0.tar\n`, '/tmp/cw-headnode-0.1.0.tar'), { ok: true, hex: HEX });
});

test('bare hex, binary-mode star, upper case and BSD style', (t) => {
  t.deepEqual(parseChecksumFile(`${HEX}\n`, 'x.tar'), { ok: true, hex: HEX });
  t.deepEqual(parseChecksumFile(`${HEX} *x.tar\n`, 'x.tar'), { ok: true, hex: HEX });
  t.deepEqual(parseChecksumFile(`${HEX.toUpperCase()}  x.tar\r\n`, 'x.tar'), { ok: true, hex: HEX });
  t.deepEqual(parseChecksumFile(`SHA256 (x.tar) = ${HEX}\n`, 'x.tar'), { ok: true, hex: HEX });
});

test('with several lines, the one naming the file', (t) => {
  const other = 'a'.repeat(64);
  t.deepEqual(parseChecksumFile(`${other}  other.tar\n${HEX}  x.tar\n`, 'dir/x.tar'), { ok: true, hex: HEX });
  t.like(parseChecksumFile(`${other}  a.tar\n${HEX}  b.tar\n`, 'x.tar'), { ok: false });
});

test('garbage and empty files are problems, with the line', (t) => {
  t.deepEqual(parseChecksumFile('', 'x.tar'), { ok: false, problem: 'no SHA-256 checksum in it' });
  const garbage = parseChecksumFile('md5 1234\n', 'x.tar');
  t.false(garbage.ok);
  t.regex(garbage.ok ? '' : garbage.problem, /^line 1 is not a SHA-256 checksum/);
  t.like(parseChecksumFile(`${HEX.slice(1)}  x.tar\n`, 'x.tar'), { ok: false });
});

test('sha256File hashes the file and reports bytes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-sum-'));
  try {
    const file = join(dir, 'f');
    writeFileSync(file, 'abc');
    let last = 0;
    t.is(await sha256File(file, (b) => (last = b)), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    t.is(last, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The parts of RPM → TAR that need no rpm tools: DEB refusal, what is not an RPM, the cpio reader on
// chunk boundaries and rpm's large-file format, tar headers read back by node-tar's parser. The whole
// conversion against rpmbuild and rpm2cpio is test/integration/rpm2tar.test.ts.
import test from 'ava';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { ByteReader, nextCpioEntry, skipDataPadding, type CpioEntry } from '../../../src/appliance/clientpkgs/rpm/cpio.js';
import { RpmFormatError } from '../../../src/appliance/clientpkgs/rpm/header.js';
import { DebToTarRefused } from '../../../src/appliance/clientpkgs/rpm/rpm2tar.js';
import { tarEnd, tarHeader, tarPadding, type TarEntry } from '../../../src/appliance/clientpkgs/rpm/tar-entries.js';
import { RpmTarCache } from '../../../src/appliance/clientpkgs/tar-cache.js';

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cw-rpm2tar-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a DEB asked for as a TAR is refused with the reason, whatever its name', async (t) => {
  const dir = await tempDir(t);
  const tars = join(dir, 'tar');
  await writeFile(join(dir, 'cw-node_1.0_amd64.deb'), '!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n');
  await writeFile(join(dir, 'renamed.rpm'), '!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n');
  const cache = new RpmTarCache(tars);
  for (const name of ['cw-node_1.0_amd64.deb', 'renamed.rpm']) {
    const err = await t.throwsAsync(cache.tarFor(join(dir, name)), { instanceOf: DebToTarRefused });
    t.regex(err?.message ?? '', /DEB packages may be provided by the head node, but they cannot be converted to TAR files/);
    t.is(err?.statusCode, 422);
  }
  t.is(cache.conversions, 0);
});

test('what is not an RPM is refused at the lead, and nothing is cached', async (t) => {
  const dir = await tempDir(t);
  const cases: [string, string | Buffer, RegExp][] = [
    ['empty.rpm', '', /lead at byte 0: file ends inside the lead \(0 of 96 bytes\)/],
    ['text.rpm', 'x'.repeat(200), /lead at byte 0: bad magic 78787878/],
    ['short.rpm', Buffer.from([0xed, 0xab, 0xee, 0xdb, 3, 0]), /lead at byte 6: file ends inside the lead \(6 of 96 bytes\)/],
  ];
  const cache = new RpmTarCache(dir);
  for (const [name, content, message] of cases) {
    await writeFile(join(dir, name), content);
    const err = await t.throwsAsync(cache.tarFor(join(dir, name)), { instanceOf: RpmFormatError });
    t.regex(err?.message ?? '', message);
  }
  t.deepEqual((await readdir(dir)).sort(), ['empty.rpm', 'short.rpm', 'text.rpm']);
});

/** A newc entry: header, name, padding, data, padding. */
function newc(name: string, fields: { ino?: number; mode: number; size?: number; nlink?: number; mtime?: number }, data = Buffer.alloc(0)): Buffer {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  const header =
    '070701' +
    [fields.ino ?? 1, fields.mode, 0, 0, fields.nlink ?? 1, fields.mtime ?? 1_700_000_000, data.length, 0, 0, 0, 0, nameBytes.length, 0].map(hex).join('');
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  return Buffer.concat([Buffer.from(header, 'latin1'), nameBytes, pad(110 + nameBytes.length), data, pad(data.length)]);
}

async function* chunked(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function readArchive(bytes: Buffer, chunk: number): Promise<[CpioEntry, string][]> {
  const reader = new ByteReader(chunked(bytes, chunk));
  const out: [CpioEntry, string][] = [];
  for (;;) {
    const entry = await nextCpioEntry(reader);
    if (!entry) return out;
    const parts: Buffer[] = [];
    for await (const c of reader.chunks(entry.size, () => new Error('short'))) parts.push(Buffer.from(c));
    await skipDataPadding(reader, entry);
    out.push([entry, Buffer.concat(parts).toString('utf8')]);
  }
}

test('the cpio reader gives the same entries whatever the chunk boundaries', async (t) => {
  const archive = Buffer.concat([
    newc('./etc/grüße ☃.conf', { mode: 0o100644 }, Buffer.from('hello\n')),
    newc('./usr/bin', { ino: 2, mode: 0o040755 }),
    newc('./usr/bin/x', { ino: 3, mode: 0o104755 }, Buffer.from('abc')),
    newc('TRAILER!!!', { ino: 0, mode: 0 }),
  ]);
  const whole = await readArchive(archive, archive.length);
  t.deepEqual(
    whole.map(([e, data]) => [e.name, e.mode.toString(8), data]),
    [
      ['./etc/grüße ☃.conf', '100644', 'hello\n'],
      ['./usr/bin', '40755', ''],
      ['./usr/bin/x', '104755', 'abc'],
    ],
  );
  for (const size of [1, 3, 7, 113]) t.deepEqual(await readArchive(archive, size), whole, `chunks of ${size}`);
});

test('the cpio reader refuses rpm large-file payloads, bad magic and truncation, naming the offset', async (t) => {
  const first = newc('./a', { mode: 0o100644 }, Buffer.from('data'));
  const stripped = Buffer.concat([first, Buffer.from('07070X00000001', 'latin1')]);
  await t.throwsAsync(readArchive(stripped, 64), { message: new RegExp(`cpio archive at byte ${first.length}: rpm's large-file payload format \\(07070X`) });
  await t.throwsAsync(readArchive(Buffer.from('070707' + '0'.repeat(104)), 64), { message: /cpio archive at byte 0: bad entry magic "070707"/ });
  await t.throwsAsync(readArchive(first, 64), { message: new RegExp(`cpio archive at byte ${first.length}: archive ends without its TRAILER`) });
  await t.throwsAsync(readArchive(first.subarray(0, 50), 64), { message: /cpio archive at byte 0: archive ends inside an entry header/ });
});

test('tar headers keep long UTF-8 names, owners by name, setuid bits, mtimes and links (read back by node-tar)', async (t) => {
  const long = `pkg/usr/share/${'ü'.repeat(60)}/${'x'.repeat(120)} with spaces`;
  const entries: [TarEntry, Buffer][] = [
    [{ path: long, type: 'File', mode: 0o4755, uid: 65534, gid: 65534, uname: 'nobody', gname: 'nogroup', mtime: 1_700_000_123, size: 3 }, Buffer.from('abc')],
    [{ path: 'pkg/usr/bin/link', type: 'Link', mode: 0o755, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: 1_700_000_000, size: 0, linkpath: long }, Buffer.alloc(0)],
    [{ path: 'pkg/usr/bin/sym', type: 'SymbolicLink', mode: 0o777, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: 1_700_000_000, size: 0, linkpath: '../share/target' }, Buffer.alloc(0)],
    [{ path: 'pkg/var/empty', type: 'Directory', mode: 0o1777, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: 1_700_000_000, size: 0 }, Buffer.alloc(0)],
  ];
  const bytes = Buffer.concat([...entries.flatMap(([e, data]) => [tarHeader(e), data, tarPadding(data.length)]), tarEnd()]);
  t.is(bytes.length % 512, 0);
  const seen: Record<string, unknown>[] = [];
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({
      onReadEntry: (entry: ReadEntry) => {
        const chunks: Buffer[] = [];
        entry.on('data', (c: Buffer) => chunks.push(c));
        entry.on('end', () =>
          seen.push({
            path: entry.path,
            type: entry.type,
            mode: entry.mode,
            uname: entry.uname,
            gname: entry.gname,
            mtime: entry.mtime?.getTime(),
            linkpath: entry.linkpath,
            data: Buffer.concat(chunks).toString(),
          }),
        );
      },
    });
    parser.on('error', reject);
    parser.on('end', resolve);
    parser.end(bytes);
  });
  t.deepEqual(seen, [
    { path: long, type: 'File', mode: 0o4755, uname: 'nobody', gname: 'nogroup', mtime: 1_700_000_123_000, linkpath: undefined, data: 'abc' },
    { path: 'pkg/usr/bin/link', type: 'Link', mode: 0o755, uname: 'root', gname: 'root', mtime: 1_700_000_000_000, linkpath: long, data: '' },
    { path: 'pkg/usr/bin/sym', type: 'SymbolicLink', mode: 0o777, uname: 'root', gname: 'root', mtime: 1_700_000_000_000, linkpath: '../share/target', data: '' },
    { path: 'pkg/var/empty/', type: 'Directory', mode: 0o1777, uname: 'root', gname: 'root', mtime: 1_700_000_000_000, linkpath: undefined, data: '' },
  ]);
});

test('parallel gzip: one valid gzip stream of the input, the same bytes every time, at any block boundary', async (t) => {
  const { parallelGzip, GZIP_BLOCK } = await import('../../../src/appliance/clientpkgs/rpm/parallel-gzip.js');
  const { gunzipSync } = await import('node:zlib');
  const { randomBytes } = await import('node:crypto');
  const collect = async (input: Buffer, chunk: number, concurrency: number): Promise<Buffer> => {
    const out: Buffer[] = [];
    for await (const part of parallelGzip(chunked(input, Math.max(1, chunk)), 6, concurrency)) out.push(part);
    return Buffer.concat(out);
  };
  for (const size of [0, 1, GZIP_BLOCK - 1, GZIP_BLOCK, 3 * GZIP_BLOCK + 17]) {
    const input = Buffer.concat([randomBytes(Math.floor(size / 2)), Buffer.alloc(size - Math.floor(size / 2), 'x')]);
    const one = await collect(input, 65536, 1);
    const four = await collect(input, 4093, 4);
    t.true(gunzipSync(one).equals(input), `${size} bytes`);
    t.true(four.equals(one), `${size} bytes: same output whatever the chunking and concurrency`);
  }
});

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, ftruncateSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_FILE_BYTES, openLocalFile, readLocalText, resolveLocalPath } from '../../../src/lib/local-files.js';
import { parseYumRepo, YumRepoError } from '../../../src/tools/clusterctl/yum-repo.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cw-tools-files-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('paths: relative to the cwd, ~/ to the home directory, .. resolved', (t) => {
  t.is(resolveLocalPath('a/../b.txt', { cwd: '/work' }), '/work/b.txt');
  t.is(resolveLocalPath('~/k', { cwd: '/', home: '/home/x' }), '/home/x/k');
  t.is(resolveLocalPath('/boot/../boot/vmlinuz', { cwd: '/' }), '/boot/vmlinuz');
  t.throws(() => resolveLocalPath('', { cwd: '/' }), { message: 'empty file name after "@"' });
  t.throws(() => resolveLocalPath('a\nb', { cwd: '/' }), { message: /control character/ });
});

test('a regular file is read; one trailing newline is dropped from inline text', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'd.txt'), 'hello\n');
  t.is(await readLocalText('d.txt', { cwd: dir }), 'hello');
  t.is(await readLocalText('d.txt', { cwd: dir }, { keepNewline: true }), 'hello\n');
});

test('a symlink to a regular file is followed (e.g. /boot/vmlinuz -> vmlinuz-6.1)', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'real'), 'x');
  symlinkSync(join(dir, 'real'), join(dir, 'link'));
  const f = await openLocalFile('link', { cwd: dir });
  t.is(f.size, 1);
  t.is((await f.readAll()).toString(), 'x');
  await f.close();
});

test('refused: directories, devices, FIFOs, missing files, symlinks to devices', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'sub'));
  symlinkSync('/dev/zero', join(dir, 'zero'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  await t.throwsAsync(openLocalFile('sub', { cwd: dir }, { label: 'kernel=@sub' }), { message: 'kernel=@sub: is a directory, not a file' });
  await t.throwsAsync(openLocalFile('/dev/zero', { cwd: dir }, { label: 'x' }), { message: 'x: is not a regular file (a character device)' });
  await t.throwsAsync(openLocalFile('zero', { cwd: dir }, { label: 'x' }), { message: 'x: is not a regular file (a character device)' });
  await t.throwsAsync(openLocalFile('fifo', { cwd: dir }, { label: 'x' }), { message: 'x: is not a regular file (a FIFO)' });
  await t.throwsAsync(openLocalFile('nope', { cwd: dir }, { label: 'x' }), { message: 'x: no such file' });
});

test('refused: files over 512 MiB (sparse, so the test stays cheap), and binary text for inline values', async (t) => {
  const dir = tempDir(t);
  const big = join(dir, 'big');
  const fd = openSync(big, 'w');
  ftruncateSync(fd, MAX_FILE_BYTES + 1);
  closeSync(fd);
  await t.throwsAsync(openLocalFile(big, { cwd: dir }, { label: 'kernel=@big' }), {
    message: `kernel=@big: file is ${MAX_FILE_BYTES + 1} bytes, larger than the 512 MiB limit`,
  });
  writeFileSync(join(dir, 'bin'), Buffer.from([0x41, 0x00, 0x42]));
  await t.throwsAsync(readLocalText('bin', { cwd: dir }, { label: 'description=@bin' }), { message: 'description=@bin: binary content, not text' });
  writeFileSync(join(dir, 'two-mib'), Buffer.alloc(2 * 1024 * 1024, 0x41));
  await t.throwsAsync(readLocalText('two-mib', { cwd: dir }, { label: 'd' }), { message: /larger than the 1 MiB limit/ });
});

test('uploads stream exactly the size that was checked, and can be streamed again', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'k'), 'kernel-bytes');
  const f = await openLocalFile('k', { cwd: dir });
  const read = async () => {
    const chunks: Buffer[] = [];
    for await (const c of f.stream()) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString();
  };
  t.is(await read(), 'kernel-bytes');
  t.is(await read(), 'kernel-bytes');
  await f.close();
});

test('yum .repo files: sections, continuation lines, several URLs and keys, enabled flag', (t) => {
  const text = [
    '# CentOS-Base.repo',
    '[base]',
    'name=CentOS-$releasever - Base',
    'baseurl=http://mirror.centos.org/centos/$releasever/os/$basearch/',
    '        http://vault.centos.org/$releasever/os/$basearch/',
    'gpgcheck=1',
    'gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7 file:///etc/pki/rpm-gpg/extra',
    '',
    '[updates]',
    'name = CentOS Updates',
    'mirrorlist=http://mirrorlist.centos.org/?release=$releasever',
    '',
    '[centosplus]',
    'baseurl=http://mirror.centos.org/centos/$releasever/centosplus/$basearch/',
    'enabled=0',
  ].join('\n');
  const repos = parseYumRepo(text, 'CentOS-Base.repo');
  t.deepEqual(repos, [
    {
      id: 'base',
      title: 'CentOS-$releasever - Base',
      urls: ['http://mirror.centos.org/centos/$releasever/os/$basearch/', 'http://vault.centos.org/$releasever/os/$basearch/'],
      keys: ['file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7', 'file:///etc/pki/rpm-gpg/extra'],
      enabled: true,
      mirrored: false,
      line: 2,
    },
    { id: 'updates', title: 'CentOS Updates', urls: [], keys: [], enabled: true, mirrored: true, line: 9 },
    { id: 'centosplus', urls: ['http://mirror.centos.org/centos/$releasever/centosplus/$basearch/'], keys: [], enabled: false, mirrored: false, line: 13 },
  ]);
});

test('yum .repo files: every malformed line is reported with its number', (t) => {
  const err = t.throws(() => parseYumRepo('baseurl=x\n[a]\njunk\n[a]\n', 'x.repo'), { instanceOf: YumRepoError });
  t.deepEqual(err?.problems, [
    'x.repo:1: "baseurl=x" comes before any [section]',
    'x.repo:3: expected [section] or key=value, not "junk"',
    'x.repo:4: section [a] appears twice',
  ]);
});

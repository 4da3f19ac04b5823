import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpioArchive, normalizePath } from '../../../../src/images/initramfs/cpio.js';
import { requireTools } from '../../../helpers/tools.js';

const cpioTest = requireTools('cpio');

function sample(): CpioArchive {
  return new CpioArchive()
    .file('init', Buffer.from('#!/bin/sh\necho hi\n'), 0o755)
    .file('usr/share/udhcpc/cw.script', Buffer.from('x'), 0o755)
    .file('etc/cw/modules', Buffer.from(''))
    .symlink('bin/sh', 'busybox')
    .chardev('dev/console', 5, 1)
    .dir('tmp', 0o1777);
}

test('newc layout: 4-byte alignment, parents first, trailer', (t) => {
  const buf = sample().toBuffer();
  t.is(buf.length % 4, 0);
  t.is(buf.subarray(0, 6).toString(), '070701');
  t.true(buf.includes(Buffer.from('TRAILER!!!\0')));
  const paths = sample().paths();
  t.true(paths.indexOf('usr') < paths.indexOf('usr/share'));
  t.true(paths.indexOf('usr/share/udhcpc') < paths.indexOf('usr/share/udhcpc/cw.script'));
});

test('same inputs give the same bytes', (t) => {
  t.deepEqual(sample().toBuffer(), sample().toBuffer());
});

test('paths are normalized and .. is refused', (t) => {
  t.is(normalizePath('/./usr//bin/'), 'usr/bin');
  t.throws(() => normalizePath('a/../b'));
  t.throws(() => new CpioArchive().file('a', Buffer.alloc(1)).file('a/b', Buffer.alloc(1)), { message: /not a directory/ });
});

cpioTest('cpio(1) lists and extracts what we write', async (t) => {
  const bytes = sample().toBuffer();
  const listed = await execa('cpio', ['-it', '--quiet'], { input: bytes });
  t.deepEqual(listed.stdout.split('\n').sort(), sample().paths().sort());
  const verbose = await execa('cpio', ['-itv', '--quiet'], { input: bytes });
  t.regex(verbose.stdout, /^crw-------\s+1 root\s+root\s+5,\s+1 .* dev\/console$/m);
  t.regex(verbose.stdout, /^lrwxrwxrwx .* bin\/sh -> busybox$/m);
  const dir = mkdtempSync(join(tmpdir(), 'cw-cpio-'));
  try {
    // Without device nodes: extracting them needs root and proves nothing more.
    const noDev = new CpioArchive().file('init', Buffer.from('#!/bin/sh\necho hi\n'), 0o755).symlink('bin/sh', 'busybox').toBuffer();
    await execa('cpio', ['-id', '--quiet'], { input: noDev, cwd: dir });
    t.is(readFileSync(join(dir, 'init'), 'utf8'), '#!/bin/sh\necho hi\n');
    t.is(statSync(join(dir, 'init')).mode & 0o777, 0o755);
    t.is(readlinkSync(join(dir, 'bin/sh')), 'busybox');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

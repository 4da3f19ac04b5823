import test from 'ava';
import { BootFileSniffer, checkBootFile, kernelRelease } from '../../../src/lib/boot-files.js';
import { fakeBzImage, fakeCpio, fakeInitramfs, fakeVmlinux } from './boot-file-fixtures.js';

test('a kernel is a bzImage with a version string or an ELF vmlinux with the Linux banner', (t) => {
  t.is(checkBootFile('kernel', fakeBzImage('6.1.0-18-amd64 (x@y) #1')), true);
  t.is(kernelRelease(fakeBzImage('6.1.0-18-amd64 (x@y) #1')), '6.1.0-18-amd64');
  t.is(checkBootFile('kernel', fakeVmlinux('6.1.0')), true);
  t.is(checkBootFile('kernel', Buffer.from('hello')), 'not a Linux kernel (no bzImage header, not an ELF vmlinux)');
  t.is(checkBootFile('kernel', fakeVmlinux('6.1.0').subarray(0, 1000)), 'an ELF file without a "Linux version " string, not a vmlinux');
});

test('the banner is found across chunk boundaries, and reading stops once the verdict is known', (t) => {
  const elf = fakeVmlinux('6.1.0');
  for (const size of [1, 7, 13, 4096]) {
    const sniffer = new BootFileSniffer('kernel');
    for (let i = 0; i < elf.length && sniffer.wantsMore; i += size) sniffer.push(elf.subarray(i, i + size));
    t.is(sniffer.check(), true, String(size));
  }
  const bz = new BootFileSniffer('kernel');
  bz.push(Buffer.concat([fakeBzImage('6.1.0'), Buffer.alloc(0x20000)]));
  t.false(bz.wantsMore, 'a bzImage needs only its head');
});

test('an initramfs is a newc cpio archive, plain or compressed', (t) => {
  t.is(checkBootFile('initramfs', fakeCpio()), true);
  t.is(checkBootFile('initramfs', fakeInitramfs()), true);
  t.is(checkBootFile('initramfs', Buffer.from([0x1f, 0x8b, 0x63, 0x00])), 'gzip data that does not unpack');
  t.regex(checkBootFile('initramfs', Buffer.from('070707 odc is not newc')) as string, /^not a cpio archive/);
});

// The smallest files that pass for a kernel or an initramfs (what src/lib/boot-files.ts checks).
import { gzipSync } from 'node:zlib';

/** A minimal bzImage: "HdrS" at 0x202 and a version string the pointer at 0x20E leads to. */
export function fakeBzImage(version: string, size = 8192): Buffer {
  const buf = Buffer.alloc(size, 0x90);
  buf.write('HdrS', 0x202, 'latin1');
  const at = 0x1000;
  buf.writeUInt16LE(at - 0x200, 0x20e);
  buf.write(`${version}\0`, at, 'latin1');
  return buf;
}

/** A minimal ELF vmlinux: the ELF magic and, far from the start, the kernel's banner. */
export function fakeVmlinux(release: string, size = 300_000): Buffer {
  const buf = Buffer.alloc(size);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(buf, 0);
  buf.write(`Linux version ${release} (builder@example) #1 SMP\n\0`, size - 200, 'latin1');
  return buf;
}

/** A newc cpio archive with one file and the trailer. */
export function fakeCpio(name = 'init', content = '#!/bin/sh\n'): Buffer {
  const entry = (file: string, data: Buffer, mode: number): Buffer => {
    const fields = [1, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, file.length + 1, 0];
    const header = `070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}${file}\0`;
    const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
    return Buffer.concat([Buffer.from(header, 'latin1'), pad(header.length), data, pad(data.length)]);
  };
  return Buffer.concat([entry(name, Buffer.from(content), 0o100755), entry('TRAILER!!!', Buffer.alloc(0), 0)]);
}

/** A gzip-compressed newc cpio, as cw-mkramfs writes. */
export function fakeInitramfs(): Buffer {
  return gzipSync(fakeCpio());
}

// What a boot config's files must be: the kernel a Linux kernel (a bzImage with the boot protocol header,
// or an ELF vmlinux), the initramfs a cpio archive, plain or compressed. Checked from the first bytes
// (and, for an ELF kernel, a scan for its version banner) by the API before an upload is kept, and by
// the cw-* tools before they upload, so a text file never becomes a node's kernel.
import { constants, gunzipSync } from 'node:zlib';
import type { Check } from './validate.js';

export type BootFileKind = 'kernel' | 'initramfs';

// The bzImage boot protocol: "HdrS" at 0x202, and at 0x20E a pointer (minus 0x200) to the
// NUL-terminated version string, e.g. "6.1.0-18-amd64 (debian-kernel@lists.debian.org) #1 SMP ...".
const HDRS_OFFSET = 0x202;
const HDRS_MAGIC = 0x53726448;
const VERSION_POINTER_OFFSET = 0x20e;
/** Enough of the file to reach any version string the 16-bit pointer can name. */
export const KERNEL_HEAD_BYTES = 0x200 + 0x10000 + 256;
/** Enough of an initramfs to see its format and the first bytes of a gzip stream. */
const INITRAMFS_HEAD_BYTES = 4096;

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
/** The kernel's banner (`linux_banner`), present in every vmlinux. */
const LINUX_BANNER = Buffer.from('Linux version ', 'latin1');

/** Whether `head` starts with the bzImage boot protocol header. */
function isBzImage(head: Buffer): boolean {
  return head.length >= VERSION_POINTER_OFFSET + 2 && head.readUInt32LE(HDRS_OFFSET) === HDRS_MAGIC;
}

/** The kernel release from a bzImage's header (`6.1.0-18-amd64`), or null when it has none. */
export function kernelRelease(head: Buffer): string | null {
  if (!isBzImage(head)) return null;
  const pointer = head.readUInt16LE(VERSION_POINTER_OFFSET);
  if (pointer === 0) return null;
  const start = pointer + 0x200;
  if (start >= head.length) return null;
  const end = head.indexOf(0, start);
  const text = head.subarray(start, end === -1 ? Math.min(head.length, start + 256) : Math.min(end, start + 256)).toString('latin1');
  const release = text.split(/\s/)[0] ?? '';
  return /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$/.test(release) ? release : null;
}

const CPIO_MAGICS = ['070701', '070702'];
/** Compressed formats the kernel unpacks an initramfs from (magic bytes at offset 0). */
const COMPRESSIONS: ReadonlyArray<{ name: string; magic: Buffer }> = [
  { name: 'gzip', magic: Buffer.from([0x1f, 0x8b]) },
  { name: 'xz', magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) },
  { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]) },
  { name: 'lz4', magic: Buffer.from([0x02, 0x21, 0x4c, 0x18]) },
  { name: 'lz4', magic: Buffer.from([0x04, 0x22, 0x4d, 0x18]) },
];

function isCpio(bytes: Buffer): boolean {
  return CPIO_MAGICS.includes(bytes.subarray(0, 6).toString('latin1'));
}

function checkInitramfs(head: Buffer): Check {
  if (isCpio(head)) return true;
  const compression = COMPRESSIONS.find((c) => head.subarray(0, c.magic.length).equals(c.magic));
  if (!compression) return 'not a cpio archive ("070701" newc), nor gzip, xz, zstd or lz4 compressed';
  if (compression.name !== 'gzip') return true;
  // The start of a gzip stream unpacks on its own; at most ~1 MiB comes out of 1 KiB, so this stays cheap.
  let start: Buffer;
  try {
    start = gunzipSync(head.subarray(0, 1024), { finishFlush: constants.Z_SYNC_FLUSH });
  } catch {
    return 'gzip data that does not unpack';
  }
  if (start.length >= 6 && !isCpio(start)) return 'gzip data that is not a cpio archive';
  return true;
}

/**
 * Looks at a boot file as its bytes go by (`push` each chunk in order, then `check`), keeping only the
 * head and, for an ELF kernel, scanning for the version banner without holding the file.
 * Example: const s = new BootFileSniffer('kernel'); s.push(bytes); s.check() → true | 'not a Linux kernel (...)'.
 */
export class BootFileSniffer {
  readonly kind: BootFileKind;
  private readonly headLimit: number;
  private readonly chunks: Buffer[] = [];
  private headSize = 0;
  private headCache: Buffer | null = null;
  private elf: boolean | null = null;
  private banner = false;
  private tail: Buffer = Buffer.alloc(0);

  constructor(kind: BootFileKind) {
    this.kind = kind;
    this.headLimit = kind === 'kernel' ? KERNEL_HEAD_BYTES : INITRAMFS_HEAD_BYTES;
  }

  /** Whether further bytes could still change the verdict (a reader may stop once this is false). */
  get wantsMore(): boolean {
    if (this.headSize < this.headLimit) return true;
    return this.elf === true && !this.banner;
  }

  push(chunk: Buffer): void {
    if (this.headSize < this.headLimit) {
      const part = chunk.subarray(0, this.headLimit - this.headSize);
      this.chunks.push(part);
      this.headSize += part.length;
      this.headCache = null;
    }
    if (this.kind !== 'kernel' || this.banner) return;
    if (this.elf === null && this.headSize >= ELF_MAGIC.length) this.elf = this.head().subarray(0, ELF_MAGIC.length).equals(ELF_MAGIC);
    if (this.elf === false) return;
    // The banner may straddle two chunks: keep the last few bytes of the previous one.
    const window = this.tail.length > 0 ? Buffer.concat([this.tail, chunk]) : chunk;
    if (window.includes(LINUX_BANNER)) {
      this.banner = true;
      return;
    }
    this.tail = Buffer.from(window.subarray(Math.max(0, window.length - (LINUX_BANNER.length - 1))));
  }

  /** The first bytes seen (up to what the checks need). */
  head(): Buffer {
    this.headCache ??= Buffer.concat(this.chunks);
    return this.headCache;
  }

  /** The release a bzImage names in its header, or null. */
  release(): string | null {
    return this.kind === 'kernel' ? kernelRelease(this.head()) : null;
  }

  /** `true`, or why the bytes are not what `kind` must be (a message to show after `kernel: `). */
  check(): Check {
    const head = this.head();
    if (this.kind === 'initramfs') return checkInitramfs(head);
    if (isBzImage(head)) return kernelRelease(head) !== null ? true : 'a bzImage header without a kernel version string';
    if (head.subarray(0, ELF_MAGIC.length).equals(ELF_MAGIC)) {
      return this.banner ? true : 'an ELF file without a "Linux version " string, not a vmlinux';
    }
    return 'not a Linux kernel (no bzImage header, not an ELF vmlinux)';
  }
}

/** Checks a whole boot file held in memory; see BootFileSniffer. */
export function checkBootFile(kind: BootFileKind, bytes: Buffer): Check {
  const sniffer = new BootFileSniffer(kind);
  sniffer.push(bytes);
  return sniffer.check();
}

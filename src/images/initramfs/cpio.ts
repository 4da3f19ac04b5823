// The "newc" cpio format the kernel unpacks an initramfs from (Documentation/driver-api/early-userspace/
// buffer-format.rst): per entry a 110-byte ASCII header, the NUL-terminated name and the data, each
// padded to 4 bytes; the archive ends with the entry "TRAILER!!!". Written here rather than by cpio(1)
// so device nodes (/dev/console) need no root and the same inputs always give the same bytes.

const MAGIC = '070701';
const HEADER_SIZE = 110;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Buffer; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

/**
 * An archive being assembled: entries by path, missing parent directories added, written parents
 * first. `const a = new CpioArchive(); a.file('init', buf, 0o755); const bytes = a.toBuffer()`.
 */
export class CpioArchive {
  private readonly entries = new Map<string, CpioEntry>();

  /** Adds (or replaces) an entry; its parent directories are created as 0755 when absent. */
  add(entry: CpioEntry): this {
    const path = normalizePath(entry.path);
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const existing = this.entries.get(parent);
      if (!existing) this.entries.set(parent, { kind: 'dir', path: parent });
      else if (existing.kind !== 'dir') throw new Error(`cpio: ${parent} is not a directory (needed for ${path})`);
    }
    this.entries.set(path, { ...entry, path });
    return this;
  }

  dir(path: string, mode = 0o755): this {
    return this.add({ kind: 'dir', path, mode });
  }
  file(path: string, data: Buffer, mode = 0o644): this {
    return this.add({ kind: 'file', path, data, mode });
  }
  symlink(path: string, target: string): this {
    return this.add({ kind: 'symlink', path, target });
  }
  chardev(path: string, major: number, minor: number, mode = 0o600): this {
    return this.add({ kind: 'chardev', path, major, minor, mode });
  }

  has(path: string): boolean {
    return this.entries.has(normalizePath(path));
  }

  /** Paths in archive order (each directory before what it holds). */
  paths(): string[] {
    return [...this.entries.keys()].sort(comparePaths);
  }

  /** The archive bytes (uncompressed). `mtime` is every entry's time in seconds (default 0: reproducible). */
  toBuffer(mtime = 0): Buffer {
    const chunks: Buffer[] = [];
    let ino = 1;
    for (const path of this.paths()) {
      const e = this.entries.get(path) as CpioEntry;
      switch (e.kind) {
        case 'dir':
          chunks.push(...record({ ino: ino++, mode: S_IFDIR | (e.mode ?? 0o755), nlink: 2, mtime, name: path, data: Buffer.alloc(0) }));
          break;
        case 'file':
          chunks.push(...record({ ino: ino++, mode: S_IFREG | (e.mode ?? 0o644), nlink: 1, mtime, name: path, data: e.data }));
          break;
        case 'symlink':
          chunks.push(...record({ ino: ino++, mode: S_IFLNK | 0o777, nlink: 1, mtime, name: path, data: Buffer.from(e.target) }));
          break;
        case 'chardev':
          chunks.push(
            ...record({ ino: ino++, mode: S_IFCHR | (e.mode ?? 0o600), nlink: 1, mtime, name: path, data: Buffer.alloc(0), rdevMajor: e.major, rdevMinor: e.minor }),
          );
          break;
      }
    }
    chunks.push(...record({ ino: 0, mode: 0, nlink: 1, mtime: 0, name: 'TRAILER!!!', data: Buffer.alloc(0) }));
    return Buffer.concat(chunks);
  }
}

interface RecordFields {
  ino: number;
  mode: number;
  nlink: number;
  mtime: number;
  name: string;
  data: Buffer;
  rdevMajor?: number;
  rdevMinor?: number;
}

function record(f: RecordFields): Buffer[] {
  const name = Buffer.from(`${f.name}\0`, 'utf8');
  const fields = [f.ino, f.mode, 0, 0, f.nlink, f.mtime, f.data.length, 0, 0, f.rdevMajor ?? 0, f.rdevMinor ?? 0, name.length, 0];
  const header = Buffer.from(MAGIC + fields.map(hex8).join(''), 'ascii');
  return [header, name, zeros(pad4(HEADER_SIZE + name.length)), f.data, zeros(pad4(f.data.length))];
}

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`cpio: field value ${n} out of range`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function zeros(n: number): Buffer {
  return Buffer.alloc(n);
}

/** `/usr/bin/` and `./usr/bin` -> `usr/bin`; refuses empty names and `..`. */
export function normalizePath(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0) throw new Error(`cpio: empty path "${path}"`);
  if (parts.includes('..')) throw new Error(`cpio: ".." in path "${path}"`);
  return parts.join('/');
}

/** Orders paths component by component, so `a` < `a/b` < `a-c` never puts a child before its parent. */
function comparePaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] as string;
    const y = pb[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

// Boot files and images by content. Every kernel, initramfs and image a head holds is also
// STORAGE/blobs/<sha256 hex>, a hard link of the file under boot/ or images/ (no second copy on disk).
// Boot scripts name the blob, never the object's file: a URL that can only ever answer those exact
// bytes, whichever head answers it and however many uploads happened meanwhile.
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { link, mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { sha256OfFile } from '../../lib/backup-archive.js';

export const SHA256_HEX_RE = /^[0-9a-f]{64}$/;

/** The hex digits of a `sha256:<hex>` checksum, or null for anything else. */
export function hexOfChecksum(checksum: string | null | undefined): string | null {
  const m = typeof checksum === 'string' ? /^sha256:([0-9a-f]{64})$/.exec(checksum) : null;
  return m ? (m[1] as string) : null;
}

/** `BLOBS/<hex>`; throws for anything but 64 lower-case hex digits (never a path from outside). */
export function blobPath(blobsDir: string, hex: string): string {
  if (!SHA256_HEX_RE.test(hex)) throw new Error(`not a sha256 in hex: ${JSON.stringify(hex.slice(0, 70))}`);
  return join(blobsDir, hex);
}

async function statOrNull(file: string): Promise<Stats | null> {
  try {
    return await stat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

const sameFile = (a: Stats, b: Stats): boolean => a.ino === b.ino && a.dev === b.dev;

/** The blobs of one head: which it holds, and the links between them and the objects' files. */
export class LocalBlobs {
  /** Files known not to hold the content asked for: `file` → its `ino:size:mtime` when it was hashed. */
  readonly #mismatch = new Map<string, string>();

  constructor(readonly dir: string) {}

  path(hex: string): string {
    return blobPath(this.dir, hex);
  }

  async has(hex: string): Promise<boolean> {
    return (await statOrNull(this.path(hex)))?.isFile() ?? false;
  }

  /**
   * Makes `file` (content known to be `hex`: just received and hashed) a blob as well; a blob that is
   * there already stays (same bytes by definition).
   */
  async keep(file: string, hex: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    try {
      await link(file, this.path(hex));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }

  /**
   * Whether `hex` is here, linking in the first of `candidates` (an object's file from before blobs, or
   * copied in by hand) whose size is `size` and whose content hashes to `hex`. Each version of a file
   * that does not match is hashed once.
   */
  async adopt(hex: string, size: number, candidates: readonly string[]): Promise<boolean> {
    if (await this.has(hex)) return true;
    for (const file of candidates) {
      const st = await statOrNull(file);
      if (!st?.isFile() || st.size !== size) continue;
      const version = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (this.#mismatch.get(file) === version) continue;
      if ((await sha256OfFile(file)) !== hex) {
        this.#mismatch.set(file, version);
        continue;
      }
      await this.keep(file, hex);
      return true;
    }
    return false;
  }

  /**
   * Makes `file` the blob `hex` (one inode), replacing whatever `file` was in one rename, so a reader
   * of `file` sees the old bytes or the new ones. Answers whether anything changed.
   */
  async placeAt(hex: string, file: string): Promise<boolean> {
    const blob = await stat(this.path(hex));
    const current = await statOrNull(file);
    if (current !== null && sameFile(current, blob)) return false;
    await mkdir(dirname(file), { recursive: true, mode: 0o755 });
    const tmp = `${file}.${randomBytes(6).toString('hex')}.link`;
    await link(this.path(hex), tmp);
    try {
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return true;
  }
}

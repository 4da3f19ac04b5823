// Replacing a file so readers see either the old or the new content, never a mix, and a crash leaves
// one of the two on disk: a temporary file in the same directory gets the data, is flushed (fsync),
// renamed over the target, and the directory is flushed too. One helper for the head node, the admin
// tools and image making; a synchronous twin for the callers that cannot wait.
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** Permission bits of the new file (default 0644), set exactly whatever the umask. */
  mode?: number;
  /**
   * Let the umask reduce `mode`, as a plain `writeFile` would (for files written where the user
   * chose, e.g. `cw-cluster-conf save FILE`). Otherwise the file is created 0600, so its content is
   * never readable by others, then given `mode`.
   */
  umask?: boolean;
}

/**
 * Replaces `file` with `data`: `await writeFileAtomic('/var/lib/cw/dhcp/model.json', text, { mode: 0o644 })`.
 * The directory must exist. On failure the temporary file is removed and `file` is untouched.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const { mode = 0o644, umask = false } = options;
  const tmp = temporaryName(file);
  const fh = await open(tmp, 'wx', umask ? mode : 0o600);
  try {
    try {
      await fh.writeFile(data);
      if (!umask) await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDirectory(dirname(file));
}

/**
 * `writeFileAtomic` for data that arrives as a stream (archives, downloads): never held in memory, and
 * `file` appears only once the whole stream is written and flushed.
 */
export async function writeStreamAtomic(file: string, source: Readable | AsyncIterable<Uint8Array>, options: AtomicWriteOptions = {}): Promise<void> {
  const { mode = 0o644, umask = false } = options;
  const tmp = temporaryName(file);
  const fh = await open(tmp, 'wx', umask ? mode : 0o600);
  try {
    // The mode is set while the file is still empty (only `mode` may read it); the stream flushes
    // (fsync) and closes the handle when it ends.
    if (!umask) await fh.chmod(mode);
    await pipeline(source, fh.createWriteStream({ flush: true }));
    await rename(tmp, file);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDirectory(dirname(file));
}

/** `writeFileAtomic` for synchronous callers. */
export function writeFileAtomicSync(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const tmp = temporaryName(file);
  writeNewFileSync(tmp, data, options);
  try {
    renameSync(tmp, file);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
  syncDirectorySync(dirname(file));
}

/**
 * Creates `file` (which must not exist) with `data` and flushes it; on failure nothing is left.
 * For callers that move it into place themselves (e.g. with link(2), which refuses an existing name).
 */
export function writeNewFileSync(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const { mode = 0o644, umask = false } = options;
  const fd = openSync(file, 'wx', umask ? mode : 0o600);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    if (!umask) fchmodSync(fd, mode);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(file);
    throw err;
  }
  closeSync(fd);
}

/** Flushes a directory's entries (a rename or link in it); best effort, as not every filesystem can. */
export function syncDirectorySync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Not supported here (some network and FUSE filesystems): the rename itself still happened.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    // As in syncDirectorySync.
  } finally {
    await fh.close();
  }
}

function temporaryName(file: string): string {
  return join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

// Reading a tar archive that is untrusted input (backups, image archives): only regular files, a fixed
// first member, every entry's bytes streamed to the caller's handler — never the whole archive in memory —
// and read errors (corrupt, truncated, not a tar) turned into the caller's own error type. node-tar parses;
// what is allowed where is for the caller to say.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fsyncSync, writeSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';

export interface CheckedTarOptions {
  /** The name the first member must have (its manifest). */
  firstMember: string;
  /** What the archive should be, for messages: `a cw-headnode backup`. */
  kind: string;
  /** The error every refusal becomes. */
  error: (message: string) => Error;
  /**
   * Called for each regular file after the type and first-member checks; returns a refusal message, or
   * undefined after taking the entry (it must consume the entry's data, e.g. with `readSmall`/`hashTo`).
   */
  onFile: (entry: ReadEntry, fail: (err: Error) => void) => string | undefined;
}

/** Reads the whole archive through `onFile`; throws the first refusal or read error. */
export async function readCheckedTar(file: string, options: CheckedTarOptions): Promise<void> {
  let failure: Error | undefined;
  const fail = (err: Error): void => {
    failure ??= err;
  };
  let first = true;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      const shown = JSON.stringify(entry.path.slice(0, 100));
      let refusal: string | undefined;
      if (failure) refusal = undefined;
      else if (entry.type !== 'File' && entry.type !== 'OldFile') refusal = `it holds ${shown}, a ${entry.type} entry: only regular files are accepted`;
      else if (first && entry.path !== options.firstMember) refusal = `its first member is ${shown}, not ${options.firstMember}: not ${options.kind}`;
      first = false;
      if (failure || refusal !== undefined) {
        if (refusal !== undefined) fail(options.error(refusal));
        return void entry.resume();
      }
      try {
        refusal = options.onFile(entry, fail);
      } catch (err) {
        // E.g. a file that cannot be created where the entry goes.
        fail(err as Error);
        return void entry.resume();
      }
      if (refusal !== undefined) {
        fail(options.error(refusal));
        entry.resume();
      }
    },
  });
  try {
    await pipeline(createReadStream(file), parser as unknown as NodeJS.WritableStream);
  } catch (err) {
    if (failure) throw failure;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EISDIR') throw options.error(`cannot read it: ${e.message}`);
    throw options.error(`it is corrupt or truncated (${e.message})`);
  }
  if (failure) throw failure;
  if (first) throw options.error(`it holds no ${options.firstMember}: not ${options.kind}`);
}

/** Collects a small entry (a manifest) as text and hands it to `done`, whose exception fails the read. */
export function readSmall(entry: ReadEntry, fail: (err: Error) => void, done: (text: string) => void): void {
  const chunks: Buffer[] = [];
  entry.on('data', (chunk: Buffer) => chunks.push(chunk));
  entry.on('end', () => {
    try {
      done(Buffer.concat(chunks).toString('utf8'));
    } catch (err) {
      fail(err as Error);
    }
  });
}

/**
 * Hashes an entry's bytes (SHA-256) and, with `fd`, writes them there as they stream by (then flushes and
 * closes it); `done` gets the size and hex digest.
 */
export function hashTo(entry: ReadEntry, fd: number | undefined, fail: (err: Error) => void, done: (got: { size: number; sha256: string }) => void): void {
  const hash = createHash('sha256');
  let size = 0;
  let broken = false;
  entry.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
    if (fd === undefined || broken) return;
    try {
      let off = 0;
      while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
    } catch (err) {
      broken = true;
      fail(err as Error);
    }
  });
  entry.on('end', () => {
    if (fd !== undefined) {
      try {
        fsyncSync(fd);
      } catch (err) {
        fail(err as Error);
      } finally {
        closeSync(fd);
      }
    }
    done({ size, sha256: hash.digest('hex') });
  });
}

// Local files named on the command line: `key=@path` values, `cw-cluster-conf load FILE`, `.repo` files,
// `cw-containerctl add-admin NAME @KEY_FILE`.
//
// A file is opened first and then examined through its descriptor (fstat), so what is checked is what
// is read: a path swapped for a symlink to /dev/zero between check and read cannot slip through.
// O_NONBLOCK keeps open() of a FIFO from hanging; such files are refused as not regular anyway.
import { constants, createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { formatByteLimit } from './bytes.js';
import { ExitError } from './errors.js';

/** Largest file read or uploaded: the API's upload limit. */
export const MAX_FILE_BYTES = 512 * 1024 * 1024;
/** Largest file whose text becomes one field's value: no field the API accepts comes near it. */
export const MAX_INLINE_BYTES = 1024 * 1024;
/** Largest `--content` JSON file (the API's JSON body limit; a 100,000-node bulk create fits). */
export const MAX_CONTENT_BYTES = 64 * 1024 * 1024;

/** A file that could not be opened; `code` is the errno name (`ENOENT`...) for callers with their own wording. */
export class LocalFileError extends ExitError {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined) {
    super(message);
    this.code = code;
  }
}

export interface PathContext {
  cwd: string;
  home?: string;
}

/** An open regular file, checked, ready to be read or streamed. Close it when done. */
export interface LocalFile {
  /** Absolute path as resolved (for messages). */
  path: string;
  size: number;
  /** A fresh stream of exactly `size` bytes from the start; may be called more than once. */
  stream(): Readable;
  readAll(): Promise<Buffer>;
  /** Up to `length` bytes from `offset` (fewer at the end of the file). */
  readAt(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Absolute path of a file argument: `~/x` is the home directory's, relative paths are the cwd's. */
export function resolveLocalPath(raw: string, ctx: PathContext): string {
  if (raw === '') throw new ExitError('empty file name after "@"');
  if (/[\0\n\r]/.test(raw)) throw new ExitError(`file name "${clip(raw)}" contains a control character`);
  const home = ctx.home ?? homedir();
  if (raw === '~') return home;
  if (raw.startsWith('~/')) return join(home, raw.slice(2));
  return isAbsolute(raw) ? resolve(raw) : resolve(ctx.cwd, raw);
}

/**
 * Opens a local regular file of at most `maxBytes` for reading. Refuses, with a one-line ExitError,
 * missing files, directories, devices, FIFOs, sockets and oversized files.
 * `label` prefixes messages, e.g. `kernel=@/boot/vmlinuz`.
 */
export async function openLocalFile(raw: string, ctx: PathContext, opts: { maxBytes?: number; label?: string } = {}): Promise<LocalFile> {
  const maxBytes = opts.maxBytes ?? MAX_FILE_BYTES;
  const path = resolveLocalPath(raw, ctx);
  const label = opts.label ?? path;
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw new LocalFileError(`${label}: ${describeFsError(err)}`, (err as NodeJS.ErrnoException).code);
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw new ExitError(`${label}: is a directory, not a file`);
    if (!st.isFile()) throw new ExitError(`${label}: is not a regular file (${kindOf(st)})`);
    if (st.size > maxBytes) {
      throw new ExitError(`${label}: file is ${st.size} bytes, larger than the ${formatByteLimit(maxBytes)} limit`);
    }
  } catch (err) {
    await handle.close().catch(() => {});
    if (err instanceof ExitError) throw err;
    throw new ExitError(`${label}: ${describeFsError(err)}`);
  }
  const size = (await handle.stat()).size;
  return {
    path,
    size,
    stream: () =>
      // Exactly `size` bytes even if the file grows meanwhile, so Content-Length stays true.
      size === 0
        ? Readable.from([])
        : createReadStream('', { fd: handle, start: 0, end: size - 1, autoClose: false, emitClose: false }),
    readAll: async () => {
      const buf = Buffer.alloc(size);
      let off = 0;
      while (off < size) {
        const { bytesRead } = await handle.read(buf, off, size - off, off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      return off === size ? buf : buf.subarray(0, off);
    },
    readAt: async (offset, length) => {
      const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
      const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
      return buf.subarray(0, bytesRead);
    },
    close: () => handle.close(),
  };
}

/**
 * The text of a small local file, for values inlined into a request (`description=@notes.txt`).
 * Refuses binary content; one trailing newline is dropped, as `$(cat file)` would.
 */
export async function readLocalText(raw: string, ctx: PathContext, opts: { maxBytes?: number; label?: string; keepNewline?: boolean } = {}): Promise<string> {
  const file = await openLocalFile(raw, ctx, { maxBytes: opts.maxBytes ?? MAX_INLINE_BYTES, label: opts.label });
  let bytes: Buffer;
  try {
    bytes = await file.readAll();
  } catch (err) {
    throw new ExitError(`${opts.label ?? file.path}: ${describeFsError(err)}`);
  } finally {
    await file.close().catch(() => {});
  }
  const label = opts.label ?? file.path;
  if (bytes.includes(0)) throw new ExitError(`${label}: binary content, not text`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ExitError(`${label}: binary content (not UTF-8 text)`);
  }
  if (!opts.keepNewline) text = text.replace(/\r?\n$/, '');
  return text;
}

/** A file name for a one-line message: control characters flattened, long names clipped. */
function clip(s: string, max = 60): string {
  const flat = s.replace(/[\0-\x1f\x7f]/g, '?');
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

function kindOf(st: { isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean; isSocket(): boolean }): string {
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'a special file';
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    case 'EISDIR':
      return 'is a directory, not a file';
    case 'ENXIO':
      return 'is not a regular file (no device behind it)';
    default:
      return code ?? (err instanceof Error ? err.message : String(err));
  }
}

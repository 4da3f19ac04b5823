// A node's console log: `STORAGE/logs/consoles/<node>.log` (0640), one timestamped line per line the
// serial port sent, rotated by size (`n0.log` -> `n0.log.1` -> ... -> `n0.log.KEEP`, the oldest dropped).
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Rotate once the current file would grow past this. */
export const CONSOLE_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** Rotated files kept besides the current one. */
export const CONSOLE_LOG_KEEP = 3;
/** The log's mode: root and the group that reads logs, nobody else (consoles show passwords typed at a prompt). */
export const CONSOLE_LOG_MODE = 0o640;

/** `consoleLogFile('/var/lib/cw/logs/consoles', 'n0')` -> `/var/lib/cw/logs/consoles/n0.log`. */
export function consoleLogFile(dir: string, node: string): string {
  // Node names are checked by the database (letters, digits, - and _), so they are safe as file names; re-check anyway.
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(node) || node.includes('..')) throw new Error(`not a node name: ${JSON.stringify(node)}`);
  return join(dir, `${node}.log`);
}

/**
 * A console line as it is stored: the time it arrived, a space, and the text with terminal control
 * sequences and control characters (but tabs) dropped, so that replaying the log cannot drive a terminal.
 * Example: `stampLine(new Date(0), '\x1b[1mLogin:\x1b[0m')` -> `1970-01-01T00:00:00.000Z Login:`.
 */
export function stampLine(at: Date, text: string): string {
  const clean = text
    .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '')
    .replace(/\x1b[\]P^_][^\x07\x1b]*(?:\x07|\x1b\\)?/g, '')
    .replace(/[\p{Cc}\p{Cf}](?<!\t)/gu, '');
  return `${at.toISOString()} ${clean}`;
}

export interface ConsoleLogOptions {
  maxBytes?: number;
  keep?: number;
}

/** Appends lines to one node's log and rotates it by size; writes are queued, so order is kept. */
export class ConsoleLog {
  readonly file: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  #handle: FileHandle | undefined;
  #size = 0;
  #queue: Promise<void> = Promise.resolve();

  constructor(file: string, options: ConsoleLogOptions = {}) {
    this.file = file;
    this.#maxBytes = options.maxBytes ?? CONSOLE_LOG_MAX_BYTES;
    this.#keep = Math.max(1, options.keep ?? CONSOLE_LOG_KEEP);
  }

  /** Appends already stamped lines (without newlines); resolves once they are written. Errors are reported to `onError` by the caller's catch. */
  append(lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return this.#queue;
    const data = Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
    const next = this.#queue.then(() => this.#write(data));
    // A failed write (full disk) must not block the ones after it.
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Waits for queued writes and closes the file. */
  async close(): Promise<void> {
    await this.#queue;
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close();
  }

  async #write(data: Buffer): Promise<void> {
    const handle = await this.#open();
    if (this.#size > 0 && this.#size + data.length > this.#maxBytes) {
      await this.#rotate();
      return this.#write(data);
    }
    await handle.write(data);
    this.#size += data.length;
  }

  async #open(): Promise<FileHandle> {
    if (this.#handle) return this.#handle;
    // O_NOFOLLOW: a link planted in place of the log is refused, not written through.
    const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;
    const handle = await open(this.file, flags, CONSOLE_LOG_MODE).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      // The storage layout makes logs/consoles; a directory removed since is made again (root only).
      await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
      return open(this.file, flags, CONSOLE_LOG_MODE);
    });
    const info = await handle.stat();
    if (!info.isFile()) {
      await handle.close();
      throw new Error(`${this.file} is not a regular file`);
    }
    if ((info.mode & 0o777) !== CONSOLE_LOG_MODE) await handle.chmod(CONSOLE_LOG_MODE);
    this.#size = info.size;
    this.#handle = handle;
    return handle;
  }

  async #rotate(): Promise<void> {
    await this.#handle?.close();
    this.#handle = undefined;
    await rm(`${this.file}.${this.#keep}`, { force: true });
    for (let i = this.#keep - 1; i >= 1; i--) {
      await rename(`${this.file}.${i}`, `${this.file}.${i + 1}`).catch(() => undefined);
    }
    await rename(this.file, `${this.file}.1`).catch(() => undefined);
    this.#size = 0;
  }
}

/** Most lines a replay returns. */
export const MAX_REPLAY_LINES = 100_000;

/**
 * The last `count` lines of a node's log, reaching into the newest rotated file when the current one
 * holds fewer; [] when there is no log yet. Reads at most `maxBytes` from the end of each file.
 */
export async function tailLines(file: string, count: number, maxBytes = 4 * CONSOLE_LOG_MAX_BYTES): Promise<string[]> {
  const lines: string[] = [];
  for (const name of [file, `${file}.1`]) {
    if (lines.length >= count) break;
    const text = await readEnd(name, maxBytes);
    if (text === undefined) continue;
    const own = text.split('\n');
    if (own[own.length - 1] === '') own.pop();
    lines.unshift(...own.slice(Math.max(0, own.length - (count - lines.length))));
  }
  return lines;
}

async function readEnd(file: string, maxBytes: number): Promise<string | undefined> {
  let info;
  try {
    info = await stat(file);
  } catch {
    return undefined;
  }
  if (!info.isFile()) return undefined;
  if (info.size <= maxBytes) return readFile(file, 'utf8');
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buf = Buffer.alloc(maxBytes);
    const { bytesRead } = await handle.read(buf, 0, maxBytes, info.size - maxBytes);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    // The first line is most likely cut: drop it.
    return text.slice(text.indexOf('\n') + 1);
  } finally {
    await handle.close();
  }
}

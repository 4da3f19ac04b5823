// Reading an RPM payload's cpio archive as a stream: entry headers one by one, each entry's data handed
// on in chunks, nothing buffered beyond a chunk. Hand-written because the npm cpio readers are
// unmaintained or buffer whole entries, and the "new ASCII" (newc) format rpm writes is 110 bytes of hex
// per entry. rpm writes files over 4 GiB in its own stripped format ("07070X", metadata only in the
// header); that one is recognised and refused.
import { RpmFormatError } from './header.js';

/** One cpio entry's header. */
export interface CpioEntry {
  name: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  size: number;
  devMajor: number;
  devMinor: number;
  /** Offset of the entry's header in the decompressed stream. */
  offset: number;
}

const NEWC_MAGIC = '070701';
const CRC_MAGIC = '070702';
const STRIPPED_MAGIC = '07070X';
const HEADER_SIZE = 110;
const TRAILER = 'TRAILER!!!';
const MAX_NAME = 64 * 1024;

/** Pulls exact byte counts out of a stream of chunks, keeping at most one partial chunk. */
export class ByteReader {
  readonly #source: AsyncIterator<Buffer>;
  #pending: Buffer = Buffer.alloc(0);
  #done = false;
  /** Bytes consumed so far. */
  position = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    const next = await this.#source.next();
    if (next.done) {
      this.#done = true;
      return false;
    }
    this.#pending = this.#pending.length === 0 ? next.value : Buffer.concat([this.#pending, next.value]);
    return true;
  }

  /** Exactly `n` bytes, or undefined when the stream ended first. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.#pending.length < n) if (!(await this.#fill())) return undefined;
    const out = this.#pending.subarray(0, n);
    this.#pending = this.#pending.subarray(n);
    this.position += n;
    return out;
  }

  /** The next `n` bytes as chunks as they come; throws `ended` when the stream stops short. */
  async *chunks(n: number, ended: () => Error): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#pending.length === 0 && !(await this.#fill())) throw ended();
      const take = Math.min(left, this.#pending.length);
      const chunk = this.#pending.subarray(0, take);
      this.#pending = this.#pending.subarray(take);
      this.position += take;
      left -= take;
      yield chunk;
    }
  }

  /** Skips `n` bytes (padding); false when the stream ended first. */
  async skip(n: number): Promise<boolean> {
    return (await this.read(n)) !== undefined;
  }

  /** True when nothing but zero bytes follows (cpio pads its end to a block). */
  async restIsZero(): Promise<boolean> {
    for (;;) {
      if (this.#pending.some((b) => b !== 0)) return false;
      this.position += this.#pending.length;
      this.#pending = Buffer.alloc(0);
      if (!(await this.#fill())) return true;
    }
  }
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

/**
 * The next entry of a newc archive, or undefined at its trailer. The caller must consume the entry's
 * data (`reader.chunks(entry.size)`) and then call `skipDataPadding`.
 */
export async function nextCpioEntry(reader: ByteReader): Promise<CpioEntry | undefined> {
  const offset = reader.position;
  const magicBytes = await reader.read(6);
  if (!magicBytes) throw new RpmFormatError('cpio archive', offset, 'archive ends without its TRAILER!!! entry (truncated payload)');
  const magic = magicBytes.toString('latin1');
  if (magic === STRIPPED_MAGIC) {
    throw new RpmFormatError('cpio archive', offset, "rpm's large-file payload format (07070X, used for files of 4 GiB and more) is not supported");
  }
  if (magic !== NEWC_MAGIC && magic !== CRC_MAGIC) {
    throw new RpmFormatError('cpio archive', offset, `bad entry magic ${JSON.stringify(magic)} (expected 070701)`);
  }
  const rest = await reader.read(HEADER_SIZE - 6);
  if (!rest) throw new RpmFormatError('cpio archive', offset, 'archive ends inside an entry header (truncated payload)');
  const head = Buffer.concat([magicBytes, rest]);
  const fields: number[] = [];
  for (let i = 0; i < 13; i++) {
    const text = head.toString('latin1', 6 + i * 8, 14 + i * 8);
    if (!/^[0-9a-fA-F]{8}$/.test(text)) throw new RpmFormatError('cpio archive', offset + 6 + i * 8, `bad hex field ${JSON.stringify(text)}`);
    fields.push(Number.parseInt(text, 16));
  }
  const [ino, mode, uid, gid, nlink, mtime, size, devMajor, devMinor, , , nameSize] = fields as [
    number, number, number, number, number, number, number, number, number, number, number, number, number,
  ];
  if (nameSize < 1 || nameSize > MAX_NAME) throw new RpmFormatError('cpio archive', offset + 94, `implausible name size ${nameSize}`);
  const nameBytes = await reader.read(nameSize + pad4(HEADER_SIZE + nameSize));
  if (!nameBytes) throw new RpmFormatError('cpio archive', offset + HEADER_SIZE, 'archive ends inside an entry name (truncated payload)');
  if (nameBytes[nameSize - 1] !== 0) throw new RpmFormatError('cpio archive', offset + HEADER_SIZE, 'entry name is not NUL-terminated');
  const name = nameBytes.toString('utf8', 0, nameSize - 1);
  if (name === TRAILER) return undefined;
  return { name, ino, mode, uid, gid, nlink, mtime, size, devMajor, devMinor, offset };
}

/** Skips the padding after an entry's data. */
export async function skipDataPadding(reader: ByteReader, entry: CpioEntry): Promise<void> {
  if (!(await reader.skip(pad4(entry.size)))) {
    throw new RpmFormatError('cpio archive', reader.position, `archive ends after the data of ${entry.name} (truncated payload)`);
  }
}

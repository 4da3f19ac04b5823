// The control fields of a DEB (deb(5)): an ar archive holding `debian-binary` ("2.0\n"), then
// `control.tar[.gz|.xz|.zst]` (whose `./control` names the package), then the data. Only the first two
// members are read, streamed from the file; the data is never touched.
//
// ar is read by hand: its member header is 60 bytes of fixed-width text, and the npm readers of it
// (ar, ar-async) are unmaintained and read whole archives into memory.
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { createDecompressStream as createXzDecompress } from '@napi-rs/lzma/xz';
import { Parser, type ReadEntry } from 'tar';

export class DebFormatError extends Error {}

const AR_MAGIC = '!<arch>\n';
const AR_HEADER = 60;
/** A control.tar larger than this is not a DEB's (dpkg's own are a few KiB). */
const CONTROL_TAR_MAX = 16 * 1024 * 1024;
/** The control file itself. */
const CONTROL_MAX = 1024 * 1024;

interface ArMember {
  name: string;
  offset: number;
  size: number;
}

async function readExactly(fh: FileHandle, length: number, position: number): Promise<Buffer> {
  const { buffer, bytesRead } = await fh.read(Buffer.alloc(length), 0, length, position);
  return buffer.subarray(0, bytesRead);
}

/** The ar member whose header is at `position`, or null at the end of the file. */
async function arMember(fh: FileHandle, position: number): Promise<ArMember | null> {
  const header = await readExactly(fh, AR_HEADER, position);
  if (header.length === 0) return null;
  if (header.length < AR_HEADER) throw new DebFormatError('not a DEB: an ar member header is cut short');
  const text = header.toString('latin1');
  if (text.slice(58, 60) !== '`\n') throw new DebFormatError(`not a DEB: bad ar member header at byte ${position}`);
  const sizeText = text.slice(48, 58).trim();
  if (!/^[0-9]{1,10}$/.test(sizeText)) throw new DebFormatError(`not a DEB: bad ar member size at byte ${position}`);
  // GNU ar ends names with "/"; dpkg-deb writes them without.
  return { name: text.slice(0, 16).trim().replace(/\/$/, ''), offset: position + AR_HEADER, size: Number(sizeText) };
}

function decompressorFor(member: string): Duplex | null {
  if (member === 'control.tar') return null;
  if (member === 'control.tar.gz') return createGunzip();
  if (member === 'control.tar.xz') return createXzDecompress();
  if (member === 'control.tar.zst') return createZstdDecompress();
  throw new DebFormatError(`not a DEB: its second member is ${JSON.stringify(member.slice(0, 40))}, not control.tar(.gz|.xz|.zst)`);
}

/** The text of `./control` inside the control.tar member. */
async function controlText(fh: FileHandle, member: ArMember): Promise<string> {
  if (member.size > CONTROL_TAR_MAX) throw new DebFormatError(`not a DEB: ${member.name} is larger than ${CONTROL_TAR_MAX} bytes`);
  const info = await fh.stat();
  if (member.offset + member.size > info.size) throw new DebFormatError(`not a DEB: ${member.name} ends after the file does (truncated)`);
  let control: Buffer | null = null;
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      if (entry.type !== 'File' || !['./control', 'control'].includes(entry.path) || entry.size > CONTROL_MAX) {
        entry.resume();
        return;
      }
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => {
        control = Buffer.concat(chunks);
      });
    },
  });
  const source = fh.createReadStream({ start: member.offset, end: member.offset + member.size - 1, autoClose: false });
  const decompress = decompressorFor(member.name);
  try {
    await (decompress ? pipeline(source, decompress, parser) : pipeline(source, parser));
  } catch (err) {
    throw new DebFormatError(`not a DEB: ${member.name} does not unpack (${(err as Error).message})`);
  }
  if (control === null) throw new DebFormatError(`not a DEB: ${member.name} holds no control file`);
  return (control as Buffer).toString('utf8');
}

/** The fields of a control paragraph (deb-control(5)); continuation lines are joined with "\n". */
export function parseControl(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  let last: string | null = null;
  for (const line of text.split('\n')) {
    if (line === '') {
      if (fields.size > 0) break;
      continue;
    }
    if (line.startsWith('#')) continue;
    if (/^[ \t]/.test(line)) {
      if (last === null) throw new DebFormatError('control file: a continuation line before any field');
      fields.set(last, `${fields.get(last)}\n${line.trim()}`);
      continue;
    }
    const m = /^([A-Za-z0-9][!-9;-~]*):[ \t]*(.*)$/.exec(line);
    if (!m) throw new DebFormatError(`control file: not a field: ${JSON.stringify(line.slice(0, 60))}`);
    last = m[1]!.toLowerCase();
    fields.set(last, m[2]!.trim());
  }
  return fields;
}

export interface DebControl {
  package: string;
  version: string;
  architecture: string;
}

/** Package, Version and Architecture of the DEB at `file`, from its own control file. */
export async function readDebControl(file: string): Promise<DebControl> {
  const fh = await open(file, 'r');
  try {
    const magic = await readExactly(fh, AR_MAGIC.length, 0);
    if (magic.toString('latin1') !== AR_MAGIC) throw new DebFormatError('not a DEB: no ar archive magic');
    const first = await arMember(fh, AR_MAGIC.length);
    if (!first || first.name !== 'debian-binary') throw new DebFormatError('not a DEB: the first member is not debian-binary');
    const format = (await readExactly(fh, Math.min(first.size, 16), first.offset)).toString('latin1');
    if (!/^2\.\d+\n/.test(format)) throw new DebFormatError(`not a DEB: format ${JSON.stringify(format.trim())}, not 2.x`);
    const second = await arMember(fh, first.offset + first.size + (first.size % 2));
    if (!second) throw new DebFormatError('not a DEB: no control member');
    const fields = parseControl(await controlText(fh, second));
    const get = (key: string): string => {
      const value = fields.get(key);
      if (!value) throw new DebFormatError(`control file: no ${key[0]!.toUpperCase()}${key.slice(1)} field`);
      return value;
    };
    return { package: get('package'), version: get('version'), architecture: get('architecture') };
  } finally {
    await fh.close();
  }
}

import { open, type FileHandle } from 'node:fs/promises';

const BLOCK = 512;
/** docker save archives hold a handful of entries per layer; this bounds a scan of a hostile file. */
const MAX_ENTRIES = 200_000;
/** Metadata files we read whole (manifest.json, image configs) are small. */
const MAX_METADATA = 8 << 20;

/** One image described by an archive's manifest.json. */
export interface ArchivedImage {
  repoTags: string[];
  /** Labels from the image config, or undefined when the config could not be read. */
  labels: Record<string, string> | undefined;
}

export type ArchiveKind =
  /** A plain tar with manifest.json (`docker save`, also Docker ≥25's combined layout). */
  | { kind: 'docker-archive'; images: ArchivedImage[] }
  /** A plain tar in OCI layout (index.json + oci-layout) without manifest.json: the engine decides. */
  | { kind: 'oci-archive' }
  /** gzip/bzip2/xz/zstd: the engines decompress these themselves; the contents are checked after loading. */
  | { kind: 'compressed'; format: string };

export class ArchiveProblem extends Error {}

interface TarEntry {
  offset: number;
  size: number;
}

const COMPRESSED: [string, number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
];

function cString(buf: Buffer, start: number, length: number): string {
  const slice = buf.subarray(start, start + length);
  const nul = slice.indexOf(0);
  return (nul === -1 ? slice : slice.subarray(0, nul)).toString('utf8');
}

/** Tar numeric field: octal text, or GNU base-256 when the high bit of the first byte is set. */
function tarNumber(buf: Buffer, start: number, length: number): number {
  const field = buf.subarray(start, start + length);
  if (field[0]! & 0x80) {
    let value = 0;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = cString(buf, start, length).trim();
  return text ? parseInt(text, 8) : 0;
}

/** True when the block is a tar header whose checksum matches. */
export function isTarHeader(block: Buffer): boolean {
  if (block.length < BLOCK) return false;
  const stored = tarNumber(block, 148, 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === stored;
}

/** The compression format named by the file's magic bytes, if any. */
export function compressionOf(head: Buffer): string | undefined {
  for (const [name, magic] of COMPRESSED) if (magic.every((b, i) => head[i] === b)) return name;
  return undefined;
}

function paxPath(data: Buffer): string | undefined {
  // Records are "LEN key=value\n".
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space === -1) break;
    const length = parseInt(data.subarray(offset, space).toString('ascii'), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0 && record.slice(0, eq) === 'path') return record.slice(eq + 1);
    offset += length;
  }
  return undefined;
}

async function readAt(file: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await file.read(buf, 0, length, offset);
  return buf.subarray(0, bytesRead);
}

/** Lists a tar file's entries by seeking from header to header (no data is read). */
async function scanTar(file: FileHandle, fileSize: number): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  let offset = 0;
  let nextName: string | undefined;
  for (let count = 0; count < MAX_ENTRIES && offset + BLOCK <= fileSize; count++) {
    const header = await readAt(file, offset, BLOCK);
    if (header.every((b) => b === 0)) break;
    if (!isTarHeader(header)) throw new ArchiveProblem(`corrupt tar header at byte ${offset}`);
    const size = tarNumber(header, 124, 12);
    const type = String.fromCharCode(header[156]!);
    const dataOffset = offset + BLOCK;
    if (dataOffset + size > fileSize) throw new ArchiveProblem('the tar file is truncated');
    if (type === 'x' || type === 'L') {
      const data = await readAt(file, dataOffset, Math.min(size, 1 << 20));
      nextName = type === 'x' ? paxPath(data) : cString(data, 0, data.length);
    } else if (type !== 'g') {
      const prefix = header.subarray(257, 262).toString('ascii') === 'ustar' ? cString(header, 345, 155) : '';
      const name = nextName ?? (prefix ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100));
      nextName = undefined;
      entries.set(name.replace(/^\.\//, ''), { offset: dataOffset, size });
    }
    offset = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
  }
  return entries;
}

async function readJsonEntry(file: FileHandle, entry: TarEntry | undefined): Promise<unknown> {
  if (!entry || entry.size > MAX_METADATA) return undefined;
  try {
    return JSON.parse((await readAt(file, entry.offset, entry.size)).toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Checks quickly that a file is an image archive an engine can load, and for plain `docker save` tars
 * reads each image's tags and labels (so a foreign image is refused before anything is loaded).
 * Throws ArchiveProblem with a short reason otherwise.
 */
export async function inspectArchive(path: string): Promise<ArchiveKind> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const head = await readAt(file, 0, BLOCK);
    const compression = compressionOf(head);
    if (compression) return { kind: 'compressed', format: compression };
    if (head.length < BLOCK || !isTarHeader(head)) throw new ArchiveProblem('not a tar file');
    const entries = await scanTar(file, size);
    const manifest = await readJsonEntry(file, entries.get('manifest.json'));
    if (!entries.has('manifest.json')) {
      if (entries.has('index.json') && entries.has('oci-layout')) return { kind: 'oci-archive' };
      throw new ArchiveProblem('a tar file without manifest.json');
    }
    if (!Array.isArray(manifest) || manifest.length === 0) throw new ArchiveProblem('manifest.json is not a docker save manifest');
    const images: ArchivedImage[] = [];
    for (const item of manifest as { Config?: unknown; RepoTags?: unknown }[]) {
      const repoTags = Array.isArray(item?.RepoTags) ? item.RepoTags.filter((t): t is string => typeof t === 'string') : [];
      const config = typeof item?.Config === 'string' ? await readJsonEntry(file, entries.get(item.Config)) : undefined;
      const rawLabels = (config as { config?: { Labels?: unknown } } | undefined)?.config?.Labels;
      let labels: Record<string, string> | undefined;
      if (config !== undefined) {
        labels = {};
        if (rawLabels && typeof rawLabels === 'object') {
          for (const [k, v] of Object.entries(rawLabels)) if (typeof v === 'string') labels[k] = v;
        }
      }
      images.push({ repoTags, labels });
    }
    return { kind: 'docker-archive', images };
  } finally {
    await file.close();
  }
}

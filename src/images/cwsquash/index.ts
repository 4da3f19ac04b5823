// cwsquash: a node image as a pseudo-disk. Sector 0 holds an MBR with one Linux partition starting at
// 1 MiB; the partition holds a squashfs (xz or zstd), padded to a whole sector. The kernel reads it as
// `mount -o loop,ro,offset=1048576 FILE DIR`, squashfs-tools as `unsquashfs -o 1048576 ...`; readers take
// the offset from the partition table, never from this constant.
//
// A thin wrapper over squashfs-tools: mksquashfs writes the filesystem at the partition's offset
// (zero-filling what lies before), then the MBR is written into sector 0 once the size is known.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { CwsquashFormatError, PARTITION_OFFSET, SECTOR_SIZE, buildMbr, parseMbr, type CwsquashLayout } from './mbr.js';

export { CwsquashFormatError, PARTITION_OFFSET, SECTOR_SIZE, buildMbr, parseMbr, type CwsquashLayout } from './mbr.js';

export type Compression = 'xz' | 'zstd';

/** Progress of a long step: `done` of `total` units (blocks, bytes), `percent` 0-100. */
export interface Progress {
  done: number;
  total: number;
  percent: number;
}

export interface CreateOptions {
  compression?: Compression;
  /** Called as mksquashfs reports progress (at most once per percent). */
  onProgress?: (p: Progress) => void;
  /**
   * Paths (relative to the source, mksquashfs wildcards) left out of the image, e.g. `tmp/*`.
   * The directories themselves stay.
   */
  exclude?: readonly string[];
}

/** A failure of squashfs-tools or of the file system around them, with the tool's last words. */
export class CwsquashError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CwsquashError';
  }
}

const SQUASHFS_MAGIC = 'hsqs';

/**
 * Packs `srcDir` into the cwsquash file `outFile` (replaced atomically) and returns its layout.
 * `await createCwsquash('/ws/roots/img', '/ws/img.img', { compression: 'zstd', onProgress })`.
 */
export async function createCwsquash(srcDir: string, outFile: string, opts: CreateOptions = {}): Promise<CwsquashLayout> {
  const st = await stat(srcDir).catch(() => undefined);
  if (!st?.isDirectory()) throw new CwsquashError(`cannot pack ${srcDir}: not a directory`);
  await mkdir(dirname(outFile), { recursive: true });
  const tmp = join(dirname(outFile), `.${basename(outFile)}.${randomBytes(4).toString('hex')}.part`);
  const compression = opts.compression ?? 'zstd';
  // zstd at level 6 packs a Debian root about 3x faster than xz for ~15% more bytes; nodes read either.
  const level = compression === 'zstd' ? ['-Xcompression-level', '6'] : [];
  const args = [srcDir, tmp, '-noappend', '-comp', compression, ...level, '-offset', String(PARTITION_OFFSET), '-progress', '-quiet'];
  if (opts.exclude && opts.exclude.length > 0) args.push('-wildcards', '-e', ...opts.exclude);
  try {
    await runWithProgress('mksquashfs', args, opts.onProgress);
    const size = (await stat(tmp)).size;
    const fsBytes = size - PARTITION_OFFSET;
    if (fsBytes <= 0) throw new CwsquashError('mksquashfs wrote no filesystem');
    const sectors = Math.ceil(fsBytes / SECTOR_SIZE);
    const fh = await open(tmp, 'r+');
    try {
      await fh.truncate(PARTITION_OFFSET + sectors * SECTOR_SIZE);
      await fh.write(buildMbr(sectors, PARTITION_OFFSET / SECTOR_SIZE, randomBytes(4).readUInt32LE(0)), 0, SECTOR_SIZE, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, outFile);
    return { offset: PARTITION_OFFSET, size: sectors * SECTOR_SIZE, startLba: PARTITION_OFFSET / SECTOR_SIZE, sectors };
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * The partition of a cwsquash file, read from its MBR, checked to hold a squashfs.
 * Throws CwsquashFormatError naming what is wrong for any other file.
 */
export async function readCwsquashLayout(file: string): Promise<CwsquashLayout> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CwsquashFormatError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code ?? String(err)}`);
  }
  try {
    const size = (await fh.stat()).size;
    const sector0 = Buffer.alloc(SECTOR_SIZE);
    await fh.read(sector0, 0, SECTOR_SIZE, 0);
    const layout = parseMbr(sector0, size);
    const magic = Buffer.alloc(4);
    await fh.read(magic, 0, 4, layout.offset);
    if (magic.toString('latin1') !== SQUASHFS_MAGIC) {
      throw new CwsquashFormatError(`not a cwsquash image: the partition at byte ${layout.offset} holds no squashfs`);
    }
    return layout;
  } finally {
    await fh.close();
  }
}

export interface ExtractOptions {
  onProgress?: (p: Progress) => void;
}

/** Unpacks a cwsquash file into `destDir`, which must not exist or be empty. */
export async function extractCwsquash(file: string, destDir: string, opts: ExtractOptions = {}): Promise<void> {
  const layout = await readCwsquashLayout(file);
  const existing = await readdir(destDir).catch(() => undefined);
  if (existing && existing.length > 0) throw new CwsquashError(`cannot unpack into ${destDir}: it is not empty`);
  await mkdir(dirname(destDir), { recursive: true });
  await runWithProgress('unsquashfs', ['-o', String(layout.offset), '-d', destDir, '-f', file], opts.onProgress);
}

/** The paths inside a cwsquash image, relative and without a leading `/` (`etc/hostname`). */
export async function listCwsquash(file: string): Promise<string[]> {
  const layout = await readCwsquashLayout(file);
  const r = await execa('unsquashfs', ['-o', String(layout.offset), '-d', 'R', '-l', file], { reject: false, lines: true, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new CwsquashError(`unsquashfs -l ${file} failed: ${lastLine(r.stderr.join('\n'))}`);
  // Every line is the destination ("R") followed by the path inside the image.
  return r.stdout.filter((l) => l.startsWith('R/')).map((l) => l.slice(2));
}

/** `sha256:<hex>` of a file, streamed (the form the API stores). */
export async function sha256File(file: string, onBytes?: (done: number) => void): Promise<string> {
  const hash = createHash('sha256');
  let done = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    done += (chunk as Buffer).length;
    onBytes?.(done);
  }
  return `sha256:${hash.digest('hex')}`;
}

const PROGRESS_RE = /(\d+)\/(\d+)\s+(\d+)%/g;

/** Runs a squashfs tool, turning its `\r[===]  12/345  3%` bar into callbacks; errors carry its last line. */
async function runWithProgress(cmd: string, args: string[], onProgress?: (p: Progress) => void): Promise<void> {
  const child = execa(cmd, args, { reject: false, all: true, buffer: { all: true }, stdin: 'ignore' });
  let lastPercent = -1;
  let tail = '';
  child.all?.on('data', (chunk: Buffer) => {
    const text = tail + chunk.toString('latin1');
    tail = text.slice(-200);
    let m: RegExpExecArray | null;
    let last: RegExpExecArray | undefined;
    PROGRESS_RE.lastIndex = 0;
    while ((m = PROGRESS_RE.exec(text)) !== null) last = m;
    if (!last || !onProgress) return;
    const percent = Number(last[3]);
    if (percent === lastPercent) return;
    lastPercent = percent;
    onProgress({ done: Number(last[1]), total: Number(last[2]), percent });
  });
  let r;
  try {
    r = await child;
  } catch (err) {
    throw new CwsquashError(`cannot run ${cmd}: ${(err as Error).message}`);
  }
  if (r.failed && r.code === 'ENOENT') throw new CwsquashError(`${cmd} not found: install squashfs-tools`);
  if (r.exitCode !== 0) {
    throw new CwsquashError(`${cmd} failed (exit ${r.exitCode ?? r.signal}): ${lastLine(String(r.all ?? ''))}`);
  }
}

function lastLine(text: string): string {
  const lines = text.split(/[\r\n]+/).map((l) => l.trim()).filter((l) => l !== '' && !/^\[=*/.test(l));
  return lines.at(-1) ?? 'no message';
}

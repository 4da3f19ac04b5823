import { constants, createReadStream } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { ExitError, errorMessage } from '../../../lib/errors.js';
import type { CommandContext } from '../context.js';
import { APPLIANCE_LABEL } from '../labels.js';
import { formatBytesLikeEngines } from '../../../lib/bytes.js';
import { ByteCounter, createProgress } from '../../../lib/progress.js';
import { ArchiveProblem, inspectArchive } from './archive.js';
import { parseChecksumFile, sha256File } from './checksum.js';

export interface ImgLoadOptions {
  /** Path of a `docker save` archive (a `FILE.sha256` beside it is verified when present). */
  file: string;
}

async function readableFileSize(file: string): Promise<number> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new ExitError(`image file ${file} not found (it is not a regular file)`);
    // stat succeeds on files this user cannot read.
    await access(file, constants.R_OK);
    return info.size;
  } catch (err) {
    if (err instanceof ExitError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new ExitError(code === 'EACCES' ? `image file ${file} not found (permission denied)` : `image file ${file} not found`);
  }
}

/** Verifies FILE against FILE.sha256 when that exists; returns whether a checksum was checked. */
async function verifyChecksum(file: string, size: number, ctx: CommandContext): Promise<boolean> {
  const sumFile = `${file}.sha256`;
  let text: string;
  try {
    text = await readFile(sumFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new ExitError(`cannot read ${sumFile}: ${errorMessage(err)}`);
  }
  const expected = parseChecksumFile(text, file);
  if (!expected.ok) throw new ExitError(`${sumFile}: ${expected.problem}`);
  // A bar on a terminal; in logs only the verdict line (the load's own progress follows).
  const progress = ctx.stdout.isTTY ? createProgress(ctx.stdout, 'Verifying', size, { formatValue: formatBytesLikeEngines }) : undefined;
  const actual = await sha256File(file, (bytes) => progress?.update(bytes));
  progress?.finish();
  if (actual !== expected.hex) throw new ExitError(`checksum mismatch for ${file} (expected ${expected.hex}, got ${actual})`);
  ctx.stdout.write(`Checksum OK (${sumFile})\n`);
  return true;
}

/**
 * `cw-containerctl img-load FILE`: verifies, uploads and checks a cw-headnode image archive.
 * Prints `Loaded image: NAME:TAG` per image, named as the engine reports it (Podman: `localhost/...`).
 */
export async function imgLoad(options: ImgLoadOptions, ctx: CommandContext): Promise<void> {
  const file = options.file;
  const size = await readableFileSize(file);
  await verifyChecksum(file, size, ctx);

  let archive;
  try {
    archive = await inspectArchive(file);
  } catch (err) {
    const reason = err instanceof ArchiveProblem ? err.message : errorMessage(err);
    throw new ExitError(`${file} is not a container image archive (${reason}); expected the output of "docker save"`);
  }
  if (archive.kind === 'docker-archive') {
    const foreign = archive.images.filter((i) => i.labels !== undefined && i.labels[APPLIANCE_LABEL] !== 'true');
    if (foreign.length > 0) {
      const names = foreign.map((i) => i.repoTags[0] ?? 'an untagged image').join(', ');
      throw new ExitError(`${file} holds ${names}, which is not a cw-headnode image (no ${APPLIANCE_LABEL}=true label); nothing loaded`);
    }
  }

  const engine = await ctx.engine();
  // gzip is unpacked here because Podman's compatible API accepts only plain tar archives; Docker
  // unpacks the other formats itself.
  const gunzip = archive.kind === 'compressed' && archive.format === 'gzip' ? createGunzip() : undefined;
  if (archive.kind === 'compressed' && !gunzip && engine.identity.kind === 'podman') {
    throw new ExitError(`${file} is ${archive.format}-compressed, which Podman cannot load through its API; decompress it first (e.g. ${archive.format === 'zstd' ? 'zstd' : archive.format} -dk ${file})`);
  }
  const before = await engine.listImageIds();
  const progress = createProgress(ctx.stdout, 'Loading', size, { formatValue: formatBytesLikeEngines });
  const counter = new ByteCounter((bytes) => progress.update(bytes));
  counter.once('end', () => {
    progress.finish();
    // Podman answers only after importing the whole upload, which takes a while for a large image.
    if (ctx.stdout.isTTY) ctx.stdout.write('Upload complete, the engine is importing the image...\n');
  });
  const source = createReadStream(file, { highWaterMark: 1 << 20 });
  // Bytes are counted as the engine pulls them (the upload applies back-pressure), so the bar follows
  // what has been sent, the only progress Podman lets us see.
  const upload = gunzip ?? counter;
  let gzipError: Error | undefined;
  gunzip?.once('error', (err) => (gzipError = err));
  const feeding = (gunzip ? pipeline(source, counter, gunzip) : pipeline(source, counter)).catch((err: unknown) => err);
  let loaded: string[];
  try {
    loaded = await engine.loadImage(upload);
  } catch (err) {
    // A broken gzip stream aborts the upload; say so rather than relaying the engine's view of it.
    if (gzipError) throw new ExitError(`${file} is not a valid gzip file (${errorMessage(gzipError)}); nothing loaded`);
    throw err;
  } finally {
    source.destroy();
    await feeding;
  }

  // A compressed or OCI archive could only be checked now: refuse foreign images, and remove only
  // what this load added (an image that was already present stays).
  const refused: string[] = [];
  let kept = false;
  for (const name of loaded) {
    const image = await engine.inspectImage(name);
    if (!image) continue;
    if (image.labels[APPLIANCE_LABEL] === 'true') continue;
    refused.push(name);
    if (before.has(image.id)) kept = true;
    else await engine.removeImage(name);
  }
  if (refused.length > 0) {
    const outcome = kept ? 'it was already present and is left as it was' : 'removed again';
    throw new ExitError(`${refused.join(', ')} is not a cw-headnode image (no ${APPLIANCE_LABEL}=true label); ${outcome}`);
  }
  for (const name of loaded) {
    ctx.stdout.write(name.startsWith('sha256:') ? `Loaded image ID: ${name}\n` : `Loaded image: ${name}\n`);
  }
}

// Raw uploads: a boot config's kernel and initramfs, an image's content. Each is streamed to a temporary
// file beside its final place (hashing as it goes), recorded in the store, then renamed into place, so a
// reader never sees half a file and a refused upload leaves nothing behind. Record and rename run under a
// lock per uploaded file, so of two uploads at once the last to finish wins both the record and the file.
// The bytes are also kept by content (STORAGE/blobs/<sha256>, a hard link): what boot scripts name and
// what the other heads copy (../../blobs/).
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { COLLECTIONS, objectSchema, type BootConfig } from '../../db/collections.js';
import { KeyedMutex } from '../../../lib/mutex.js';
import { BootFileSniffer, type BootFileKind } from '../../../lib/boot-files.js';
import type { StoragePaths } from '../../../lib/storage-layout.js';
import { LocalBlobs } from '../../blobs/local.js';
import { ok } from '../envelope.js';
import { HttpError } from '../errors.js';
import { idParams } from '../schemas.js';

/** Largest upload accepted (a kernel, an initramfs or an image). */
export const UPLOAD_LIMIT = 512 * 1024 * 1024;

export type { BootFileKind };

/** `STORAGE/boot/<uid>/`: the files of one boot config. */
export function bootFilesDir(paths: StoragePaths, uid: string): string {
  return join(paths.bootDir, uid);
}

/** `STORAGE/boot/<uid>/kernel` or `.../initramfs`. */
export function bootFilePath(paths: StoragePaths, uid: string, which: BootFileKind): string {
  return join(bootFilesDir(paths, uid), which);
}

/** `STORAGE/images/<uid>.img`. */
export function imageFilePath(paths: StoragePaths, uid: string): string {
  return join(paths.imagesDir, `${uid}.img`);
}

interface Received {
  tmp: string;
  size: number;
  checksum: string;
}

/**
 * Records a received upload with `record` and only then moves it to `dest`; when recording fails (the
 * object was frozen or removed meanwhile, a bad kernel...) the temporary file goes and nothing changed.
 * Both steps hold `locks` for `dest` (one file per object and field), so two uploads of the same file
 * cannot interleave as record A, record B, rename B, rename A and leave A's bytes under B's checksum.
 */
async function keepUpload<T>(locks: KeyedMutex, got: Received, dest: string, blobsDir: string, record: () => Promise<T>): Promise<T> {
  return locks.run(dest, async () => {
    try {
      // The blob first: once the store names these bytes, boot scripts point at them (a blob nothing
      // names, because recording failed, is removed later).
      await new LocalBlobs(blobsDir).keep(got.tmp, got.checksum.slice('sha256:'.length));
      const recorded = await record();
      await rename(got.tmp, dest);
      return recorded;
    } catch (err) {
      await rm(got.tmp, { force: true });
      throw err;
    }
  });
}

/**
 * Streams the request body into a temporary file next to `dest`, refusing more than `limit` bytes;
 * `sniffer` (a boot file's) sees every byte on the way.
 */
async function receive(request: FastifyRequest, dest: string, limit: number, sniffer?: BootFileSniffer): Promise<Received> {
  const body = request.body as Readable | undefined;
  if (typeof body?.pipe !== 'function') throw new HttpError(415, 'uploads take the raw bytes with content-type: application/octet-stream');
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new HttpError(413, `upload of ${declared} bytes is larger than the ${limit}-byte limit`);
  const declaredChecksum = declaredChecksumOf(request);
  const tmp = `${dest}.${randomBytes(6).toString('hex')}.part`;
  const hash = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > limit) {
        done(new HttpError(413, `upload is larger than the ${limit}-byte limit`));
        return;
      }
      hash.update(chunk);
      sniffer?.push(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(body, meter, createWriteStream(tmp, { mode: 0o644, flags: 'wx' }));
  } catch (err) {
    await rm(tmp, { force: true });
    if (err instanceof HttpError) throw err;
    throw new HttpError(400, `upload interrupted: ${(err as Error).message}`);
  }
  if (size === 0) {
    await rm(tmp, { force: true });
    throw HttpError.badRequest('empty upload');
  }
  const checksum = `sha256:${hash.digest('hex')}`;
  if (declaredChecksum !== undefined && declaredChecksum !== checksum) {
    await rm(tmp, { force: true });
    throw HttpError.badRequest(`checksum mismatch: received ${size} bytes with ${checksum} but X-Checksum says ${declaredChecksum}; nothing was stored`);
  }
  return { tmp, size, checksum };
}

/**
 * The client's `X-Checksum: sha256:<hex>` (lowercased), checked against what arrives; undefined when
 * absent. A malformed header is refused before the body is read.
 */
function declaredChecksumOf(request: FastifyRequest): string | undefined {
  const raw = request.headers['x-checksum'];
  if (raw === undefined) return undefined;
  const value = (Array.isArray(raw) ? raw.join(',') : raw).trim().toLowerCase();
  if (!/^sha256:[0-9a-f]{64}$/.test(value)) throw HttpError.badRequest('X-Checksum must be sha256:<64 hex digits>');
  return value;
}

const FILENAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

export interface UploadRoutesOptions {
  paths?: StoragePaths;
  clock: () => number;
  limit?: number;
}

/** `PUT|GET /bootconfig/:id/kernel|initramfs`, `PUT|GET /image/:id/content`. */
export const uploadRoutes: FastifyPluginAsync<UploadRoutesOptions> = async (app, { paths, clock, limit = UPLOAD_LIMIT }) => {
  const store = app.store;
  // Keyed by the destination file: `boot/<uid>/kernel|initramfs`, `images/<uid>.img`.
  const locks = new KeyedMutex();
  // Raw bodies are handed over as streams, in this plugin's routes only.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  const storage = (): StoragePaths => {
    if (!paths) throw new HttpError(503, 'uploads are not available: no storage directory configured');
    return paths;
  };

  const bootconfig = objectSchema(COLLECTIONS.bootconfigs);
  for (const which of ['kernel', 'initramfs'] as const) {
    app.put(
      `/bootconfig/:id/${which}`,
      {
        schema: {
          params: idParams,
          querystring: {
            type: 'object',
            properties: { filename: { type: 'string', maxLength: 128, description: 'name to show (default from the release)' } },
            additionalProperties: false,
          },
        },
        config: {
          rawBody: true,
          summary:
            which === 'kernel'
              ? 'Upload the kernel: a bzImage or an ELF vmlinux (release is read from the bzImage header)'
              : 'Upload the initramfs: a cpio archive, plain or gzip/xz/zstd/lz4 compressed',
          tags: ['bootconfigs'],
          data: bootconfig,
        },
      },
      async (request) => {
        const root = storage();
        const { id } = request.params as { id: string };
        const { filename } = request.query as { filename?: string };
        if (filename !== undefined && !FILENAME_RE.test(filename)) {
          throw HttpError.badRequest(`filename: invalid file name ${JSON.stringify(filename.slice(0, 60))}`);
        }
        // Refuse early (unknown, frozen) before reading a byte of the body.
        const current = await store.get('bootconfigs', id);
        if (!current) throw HttpError.notFound(`no such bootconfig: ${id}`);
        if (current.frozen) throw HttpError.forbidden(`bootconfig ${current.name} is frozen; PATCH {"frozen": false} first`);
        await mkdir(bootFilesDir(root, current.uid), { recursive: true, mode: 0o755 });
        const dest = bootFilePath(root, current.uid, which);
        const sniffer = new BootFileSniffer(which);
        const got = await receive(request, dest, limit, sniffer);
        const updated = await keepUpload(locks, got, dest, root.blobsDir, (): Promise<BootConfig> => {
          // What arrived must be what it claims to be, or it is never kept (nor served to nodes).
          const check = sniffer.check();
          if (check !== true) throw HttpError.badRequest(`${which}: ${check}; nothing was stored`);
          const release = sniffer.release();
          const shownRelease = release ?? current.release;
          const defaultName = which === 'kernel'
            ? shownRelease ? `vmlinuz-${shownRelease}` : 'vmlinuz'
            : shownRelease ? `initramfs-${shownRelease}.img` : 'initramfs.img';
          const file = { filename: filename ?? defaultName, size: got.size, checksum: got.checksum, uploaded_at: new Date(clock()).toISOString() };
          return store.attachBootFile(current.uid, which, file, release);
        });
        return ok(updated);
      },
    );

    app.get(
      `/bootconfig/:id/${which}`,
      { schema: { params: idParams }, config: { summary: `Download the ${which} (raw bytes)`, tags: ['bootconfigs'] } },
      async (request, reply) => {
        const root = storage();
        const { id } = request.params as { id: string };
        const current = await store.get('bootconfigs', id);
        if (!current) throw HttpError.notFound(`no such bootconfig: ${id}`);
        const file = current[which];
        if (!file) throw HttpError.notFound(`bootconfig ${current.name} has no ${which}`);
        return sendFile(reply, bootFilePath(root, current.uid, which), file.filename);
      },
    );
  }

  const image = objectSchema(COLLECTIONS.images);
  app.put(
    '/image/:id/content',
    { schema: { params: idParams }, config: { rawBody: true, summary: 'Upload the image content', tags: ['images'], data: image } },
    async (request) => {
      const root = storage();
      const { id } = request.params as { id: string };
      const current = await store.get('images', id);
      if (!current) throw HttpError.notFound(`no such image: ${id}`);
      if (current.frozen) throw HttpError.forbidden(`image ${current.name} is frozen; PATCH {"frozen": false} first`);
      await mkdir(root.imagesDir, { recursive: true, mode: 0o755 });
      const dest = imageFilePath(root, current.uid);
      const got = await receive(request, dest, limit);
      return ok(await keepUpload(locks, got, dest, root.blobsDir, () => store.setImageContent(current.uid, { size: got.size, checksum: got.checksum })));
    },
  );

  app.get(
    '/image/:id/content',
    { schema: { params: idParams }, config: { summary: 'Download the image content (raw bytes)', tags: ['images'] } },
    async (request, reply) => {
      const root = storage();
      const { id } = request.params as { id: string };
      const current = await store.get('images', id);
      if (!current) throw HttpError.notFound(`no such image: ${id}`);
      if (!current.checksum) throw HttpError.notFound(`image ${current.name} has no content yet`);
      return sendFile(reply, imageFilePath(root, current.uid), `${current.name}.img`);
    },
  );
};

async function sendFile(reply: import('fastify').FastifyReply, file: string, name: string) {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    throw HttpError.notFound(`${name} is missing from the storage directory`);
  }
  reply.header('content-type', 'application/octet-stream');
  reply.header('content-length', size);
  reply.header('content-disposition', `attachment; filename="${name.replace(/[^A-Za-z0-9._+-]/g, '_')}"`);
  return reply.send(createReadStream(file));
}

// `cw-imgctl -i IMG export FILE` and `cw-imgctl import FILE [--name NEW]`: an image with its metadata from
// one head node to another. The content streams between disk and the API; it is checked against its
// sha256 after the download, while it is read from the archive, and by the head node as it arrives.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { create as createTar } from 'tar';
import { sha256File } from '../../images/cwsquash/index.js';
import { writeStreamAtomic } from '../../lib/atomic-write.js';
import { formatBytes } from '../../lib/bytes.js';
import { ExitError } from '../../lib/errors.js';
import { isSafeName } from '../../lib/validate.js';
import { ApiError } from '../common/client/api-client.js';
import { asObjectList, isObject, labelOf, type ApiObject } from '../common/collection.js';
import { IMAGES } from '../common/collection.js';
import type { ToolContext } from '../common/context.js';
import { selectObjects } from '../common/select.js';
import { imageUrl } from '../modimg/download.js';
import {
  IMAGE_ARCHIVE_FORMAT,
  IMAGE_ARCHIVE_VERSION,
  IMAGE_CONTENT,
  IMAGE_MANIFEST,
  ImageArchiveError,
  readImageArchive,
  type ExportedBootConfig,
  type ImageManifest,
} from './image-archive.js';

const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const fileName = (v: unknown): string | null => (isObject(v) && typeof v.filename === 'string' ? v.filename : null);

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** `-i IMG export FILE`. */
export async function exportAction(ctx: ToolContext, words: readonly string[]): Promise<void> {
  if (words.length !== 1) throw new ExitError('export needs the archive to write: cw-imgctl -i IMAGE export FILE');
  const target = resolve(ctx.cwd, words[0]!);
  if (await exists(target)) throw new ExitError(`${target} exists; choose another file name`);
  if (!(await stat(dirname(target)).then((s) => s.isDirectory(), () => false))) throw new ExitError(`directory ${dirname(target)} does not exist`);
  const images = await selectObjects(ctx, IMAGES, { action: 'export', required: true });
  if (images.length !== 1) throw new ExitError(`export writes one image, but -i names ${images.length}`);
  const image = images[0] as ApiObject;
  const name = labelOf(image);
  if (typeof image.checksum !== 'string' || typeof image.size !== 'number') throw new ExitError(`image ${name} has no content yet; nothing to export`);
  const api = ctx.api();
  const bootconfigs: ExportedBootConfig[] = asObjectList(await api.get('/bootconfigs'))
    .filter((b) => b.image === name || b.image === image.uid)
    .map((b) => ({ name: labelOf(b), description: text(b.description), cmdline: text(b.cmdline), kernel: fileName(b.kernel), initramfs: fileName(b.initramfs) }));

  // The content is staged beside FILE (same filesystem, no /tmp of a different size); FILE is never partial.
  const staging = await mkdtemp(join(dirname(target), `.${basename(target)}.`));
  try {
    const content = join(staging, IMAGE_CONTENT);
    await api.download(imageUrl(api.baseUrl, String(image.uid)), () => createWriteStream(content, { flags: 'wx', mode: 0o600 }));
    const sum = await sha256File(content);
    if (sum !== image.checksum) throw new ExitError(`downloaded image ${name} has checksum ${sum} but the head node says ${image.checksum}; try again`);
    const manifest: ImageManifest = {
      format: IMAGE_ARCHIVE_FORMAT,
      formatVersion: IMAGE_ARCHIVE_VERSION,
      exportedAt: new Date().toISOString(),
      image: { name, description: text(image.description), size: image.size, checksum: image.checksum },
      bootconfigs,
    };
    await writeFile(join(staging, IMAGE_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 });
    await writeStreamAtomic(target, createTar({ cwd: staging, portable: true }, [IMAGE_MANIFEST, IMAGE_CONTENT]), { mode: 0o644, umask: true });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  const used = bootconfigs.length > 0 ? `; boot configs that use it: ${bootconfigs.map((b) => b.name).join(', ')} (described in the archive)` : '';
  ctx.out(`Exported image ${name} (${formatBytes(image.size)}, ${image.checksum}) to ${target}${used}\n`);
}

/** `import FILE [--name NEW]`. */
export async function importAction(ctx: ToolContext, words: readonly string[]): Promise<void> {
  if (words.length !== 1) throw new ExitError('import needs the archive to read: cw-imgctl import FILE [--name NEW]');
  if (ctx.args.common.ids !== undefined || ctx.args.common.all) throw new ExitError('import makes a new image: give its name with --name, not -i/-a');
  const file = resolve(ctx.cwd, words[0]!);
  const rename = ctx.args.options.get('name');
  if (rename !== undefined) {
    const check = typeof rename === 'string' ? isSafeName(rename) : 'needs a value';
    if (check !== true) throw new ExitError(`--name: ${check}`);
  }
  const api = ctx.api();
  const staging = await mkdtemp(join(ctx.env.TMPDIR || tmpdir(), 'cw-imgctl-import-'));
  try {
    const content = join(staging, IMAGE_CONTENT);
    let manifest: ImageManifest;
    try {
      manifest = await readImageArchive(file, content);
    } catch (err) {
      if (err instanceof ImageArchiveError) throw new ExitError(`${file} cannot be imported: ${err.message}; nothing was changed`);
      throw err;
    }
    const name = typeof rename === 'string' ? rename : manifest.image.name;
    if (await imageExists(ctx, name)) {
      throw new ExitError(`an image named ${name} already exists on the head node; import it under another name with --name NEW, nothing was changed`);
    }
    const created = await api.post<unknown>('/images', { name, description: manifest.image.description });
    const uid = isObject(created) && typeof created.uid === 'string' ? created.uid : undefined;
    if (!uid) throw new ExitError('the head node answered POST /images without a uid');
    let stored: unknown;
    try {
      stored = await api.upload<unknown>(
        `/image/${encodeURIComponent(uid)}/content`,
        { size: manifest.image.size, open: () => createReadStream(content) },
        undefined,
        { 'x-checksum': manifest.image.checksum },
      );
    } catch (err) {
      await api.delete(`/image/${encodeURIComponent(uid)}`).catch(() => {});
      throw err;
    }
    if (!isObject(stored) || stored.checksum !== manifest.image.checksum) {
      throw new ExitError(`the head node stored checksum ${String(isObject(stored) ? stored.checksum : '?')} for ${name}, expected ${manifest.image.checksum}`);
    }
    ctx.out(`Imported image ${name} (${formatBytes(manifest.image.size)}, ${manifest.image.checksum}) from ${file}\n`);
    for (const b of manifest.bootconfigs) {
      ctx.out(
        `  it was used by boot config ${b.name} (kernel ${b.kernel ?? 'none'}, initramfs ${b.initramfs ?? 'none'}, cmdline "${b.cmdline}"): make one with cw-bootctl create name=... image=${name}\n`,
      );
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function imageExists(ctx: ToolContext, name: string): Promise<boolean> {
  try {
    await ctx.api().get(`/image/${encodeURIComponent(name)}`);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return false;
    throw err;
  }
}

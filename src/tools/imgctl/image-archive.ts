// The image archive of `cw-imgctl export` / `import` (xCAT's imgexport/imgimport): a plain tar (the
// cwsquash content is already compressed) holding `cw-image.json` first — the image's name, description,
// size and checksum, and the boot configs that used it on the head node it came from — then `image.img`.
// Read as untrusted input: exactly those two regular files, in that order, the content's sha256 checked.
import { openSync } from 'node:fs';
import { hashTo, readCheckedTar, readSmall } from '../../lib/checked-tar.js';
import { isSafeName } from '../../lib/validate.js';

export const IMAGE_ARCHIVE_FORMAT = 'cw-image';
export const IMAGE_ARCHIVE_VERSION = 1;
export const IMAGE_MANIFEST = 'cw-image.json';
export const IMAGE_CONTENT = 'image.img';
const MANIFEST_MAX_BYTES = 64 * 1024;

/** A boot config that referred to the image where it was exported (for the admin to make again). */
export interface ExportedBootConfig {
  name: string;
  description: string;
  cmdline: string;
  kernel: string | null;
  initramfs: string | null;
}

export interface ImageManifest {
  format: typeof IMAGE_ARCHIVE_FORMAT;
  formatVersion: number;
  exportedAt: string;
  image: { name: string; description: string; size: number; checksum: string };
  bootconfigs: ExportedBootConfig[];
}

export class ImageArchiveError extends Error {}

const str = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;

/** Parses and checks `cw-image.json`. */
export function parseImageManifest(text: string): ImageManifest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ImageArchiveError(`${IMAGE_MANIFEST} is not JSON`);
  }
  const m = v as Partial<ImageManifest> | null;
  if (!m || typeof m !== 'object' || m.format !== IMAGE_ARCHIVE_FORMAT) throw new ImageArchiveError(`it is not a cw-headnode image archive (${IMAGE_MANIFEST} has no "format": "cw-image")`);
  if (m.formatVersion !== IMAGE_ARCHIVE_VERSION) throw new ImageArchiveError(`its format version ${String(m.formatVersion)} is not one this cw-imgctl reads (${IMAGE_ARCHIVE_VERSION})`);
  const img = m.image as Partial<ImageManifest['image']> | undefined;
  if (!img || !str(img.name, 63) || isSafeName(img.name) !== true) throw new ImageArchiveError(`${IMAGE_MANIFEST}: image.name is missing or not a valid name`);
  if (!str(img.description, 1024)) throw new ImageArchiveError(`${IMAGE_MANIFEST}: image.description is missing or too long`);
  if (!Number.isSafeInteger(img.size) || (img.size as number) <= 0) throw new ImageArchiveError(`${IMAGE_MANIFEST}: image.size is missing or invalid`);
  if (typeof img.checksum !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(img.checksum)) throw new ImageArchiveError(`${IMAGE_MANIFEST}: image.checksum is not sha256:<hex>`);
  if (!Array.isArray(m.bootconfigs)) throw new ImageArchiveError(`${IMAGE_MANIFEST}: bootconfigs is missing`);
  for (const b of m.bootconfigs as unknown[]) {
    const bc = b as Partial<ExportedBootConfig> | null;
    if (!bc || !str(bc.name, 63) || isSafeName(bc.name) !== true || !str(bc.description, 1024) || !str(bc.cmdline, 4096)) {
      throw new ImageArchiveError(`${IMAGE_MANIFEST}: a boot config entry is invalid`);
    }
  }
  return m as ImageManifest;
}

/**
 * Reads an image archive, writing `image.img` to `contentFile` (created 0600, must not exist) as it
 * streams by — never the whole image in memory — and checks its size and sha256 against the manifest.
 * Throws ImageArchiveError for anything that is not exactly a sound image archive.
 */
export async function readImageArchive(file: string, contentFile: string): Promise<ImageManifest> {
  let manifest: ImageManifest | undefined;
  let content: { size: number; checksum: string } | undefined;
  let contentSeen = false;
  await readCheckedTar(file, {
    firstMember: IMAGE_MANIFEST,
    kind: 'a cw-headnode image archive',
    error: (message) => new ImageArchiveError(message),
    onFile: (entry, fail) => {
      if (entry.path === IMAGE_MANIFEST) {
        if (manifest !== undefined || entry.size > MANIFEST_MAX_BYTES) return `its ${IMAGE_MANIFEST} is repeated or too large`;
        readSmall(entry, fail, (text) => {
          manifest = parseImageManifest(text);
        });
        return undefined;
      }
      if (entry.path !== IMAGE_CONTENT || contentSeen) return `it holds ${JSON.stringify(entry.path.slice(0, 100))}, which an image archive does not contain`;
      contentSeen = true;
      hashTo(entry, openSync(contentFile, 'wx', 0o600), fail, (got) => {
        content = { size: got.size, checksum: `sha256:${got.sha256}` };
      });
      return undefined;
    },
  });
  if (!manifest) throw new ImageArchiveError(`it holds no ${IMAGE_MANIFEST}: not a cw-headnode image archive`);
  if (!content) throw new ImageArchiveError(`it holds no ${IMAGE_CONTENT} (truncated?)`);
  if (content.size !== manifest.image.size || content.checksum !== manifest.image.checksum) {
    throw new ImageArchiveError(`${IMAGE_CONTENT} has checksum ${content.checksum} (${content.size} bytes), not ${manifest.image.checksum} (${manifest.image.size} bytes) as ${IMAGE_MANIFEST} says: the archive is damaged`);
  }
  return manifest;
}

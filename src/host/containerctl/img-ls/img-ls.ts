import type { CommandContext } from '../context.js';
import type { ImageInfo } from '../engine/engine.js';
import { formatBytesLikeEngines } from '../../../lib/bytes.js';
import { relativeTime, renderTable, shortId } from '../format.js';
import { newestFirst } from '../images.js';

// No options yet; the object keeps every command's signature the same.
export type ImgLsOptions = Record<string, never>;

/** Rows of the image table: one per tag (untagged images once, last), newest version first. */
export function imageRows(images: ImageInfo[], nowMs: number): string[][] {
  const sorted = newestFirst(images);
  return sorted.flatMap((image) =>
    (image.repoTags.length > 0 ? image.repoTags : ['<none>:<none>']).map((tag) => [
      tag,
      shortId(image.id),
      relativeTime(image.created, nowMs),
      formatBytesLikeEngines(image.size),
    ]),
  );
}

/** `cw-containerctl img-ls`: the loaded cw-headnode images only (found by label). */
export async function imgLs(_options: ImgLsOptions, ctx: CommandContext): Promise<void> {
  const engine = await ctx.engine();
  const images = await engine.listApplianceImages();
  if (images.length === 0) {
    ctx.stdout.write('No cw-headnode images loaded (see cw-containerctl img-load).\n');
    return;
  }
  ctx.stdout.write(renderTable(['REPOSITORY:TAG', 'IMAGE ID', 'CREATED', 'SIZE'], imageRows(images, ctx.clock.now())));
}

import semver from 'semver';
import type { ImageInfo } from './engine/engine.js';
import { VERSION_LABEL } from './labels.js';

/**
 * The tag of a repository tag: `localhost:5000/cw-headnode:0.1.0` → `0.1.0` (a registry port is not a tag).
 * Example: `tagOf('cw-headnode:0.2.0')` → `'0.2.0'`.
 */
export function tagOf(repoTag: string): string | undefined {
  const colon = repoTag.lastIndexOf(':');
  return colon > repoTag.lastIndexOf('/') ? repoTag.slice(colon + 1) : undefined;
}

/** The image's version: the highest semver among its tags, else its version label; null when neither is one. */
export function imageVersion(image: ImageInfo): semver.SemVer | null {
  const versions = image.repoTags
    .map((t) => semver.parse(tagOf(t) ?? '', { loose: true }))
    .filter((v): v is semver.SemVer => v !== null)
    .sort(semver.rcompare);
  return versions[0] ?? semver.parse(image.labels[VERSION_LABEL] ?? '', { loose: true });
}

/**
 * Newest first: tagged images before untagged leftovers, then by version (semver), images without a
 * version after those with one, and the engine's creation time only to break ties — a rebuild or a
 * re-load does not make an older version "newer".
 */
export function compareNewestFirst(a: ImageInfo, b: ImageInfo): number {
  const tagged = Number(b.repoTags.length > 0) - Number(a.repoTags.length > 0);
  if (tagged !== 0) return tagged;
  const va = imageVersion(a);
  const vb = imageVersion(b);
  if (va && vb && semver.neq(va, vb)) return semver.rcompare(va, vb);
  if (va && !vb) return -1;
  if (!va && vb) return 1;
  return b.created - a.created;
}

/** The images sorted newest first (see compareNewestFirst); the input is left as it was. */
export function newestFirst(images: ImageInfo[]): ImageInfo[] {
  return [...images].sort(compareNewestFirst);
}

/**
 * The image `start` runs when none is named: the newest tagged one, by the reference of its newest tag.
 * Untagged images (`<none>:<none>`, e.g. the previous build after a rebuild) are never candidates.
 */
export function newestTagged(images: ImageInfo[]): { ref: string; image: ImageInfo } | undefined {
  const image = newestFirst(images.filter((i) => i.repoTags.length > 0))[0];
  if (!image) return undefined;
  const byVersion = [...image.repoTags].sort((x, y) => {
    const vx = semver.parse(tagOf(x) ?? '', { loose: true });
    const vy = semver.parse(tagOf(y) ?? '', { loose: true });
    if (vx && vy) return semver.rcompare(vx, vy);
    return Number(Boolean(vy)) - Number(Boolean(vx));
  });
  return { ref: byVersion[0]!, image };
}

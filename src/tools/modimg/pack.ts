// Packing an unpacked root into the workspace's image file (squashfs with the cw header).
import { rm, stat } from 'node:fs/promises';
import { createCwsquash, sha256File, type Compression } from '../../images/cwsquash/index.js';
import type { ManifestEntry } from '../../images/workspace.js';
import { formatBytes } from '../../lib/bytes.js';
import type { ModimgSession } from './session.js';

/** Left out of packed images (seed 003: temporary and package-cache directories are not repacked). */
export const PACK_EXCLUDES = ['tmp/*', 'var/tmp/*', 'var/cache/apt/archives/*.deb', 'var/cache/yum/*', 'var/cache/dnf/*', 'etc/.resolv.conf.cw-saved'];

/** Packs the root into the image file when it changed and packing is wanted (--overwrite, --upload, or asked). */
export async function packIfWanted(session: ModimgSession, name: string, entry: ManifestEntry): Promise<ManifestEntry> {
  const a = session.args;
  const unpacked = Boolean(entry.modified) || !entry.file;
  if (!unpacked) return entry;
  let pack = a.upload || a.overwrite;
  if (!pack && a.chroot && session.interactive) pack = await session.ask(`Replace the local image file of ${name} with the changes?`, true);
  if (!pack) {
    session.say(`the changes to ${name} are kept unpacked in ${session.workspace.abs(entry.root ?? '')}; --overwrite packs them, --upload also sends them to the head node`);
    return entry;
  }
  const root = session.workspace.abs(entry.root as string);
  const fileRel = session.workspace.fileName(name, entry.uid);
  const file = session.workspace.abs(fileRel);
  const compression: Compression = a.compression ?? 'zstd';
  await session.reporter.step(`Packing ${name} (squashfs, ${compression})`, (s) =>
    createCwsquash(root, file, { compression, exclude: PACK_EXCLUDES, onProgress: (p) => s.percent(p.percent) }),
  );
  const checksum = await sha256File(file);
  if (entry.file && entry.file !== fileRel) await rm(session.workspace.abs(entry.file), { force: true });
  const size = (await stat(file)).size;
  session.say(`local image ${name}: ${formatBytes(size)}, ${checksum}`);
  const { modified: _m, ...rest } = entry;
  return session.workspace.put(name, { ...rest, file: fileRel, checksum });
}

// cw-modimg --ls: the local images in the workspace and the head node's; stale local copies are
// evicted first.
import { stat } from 'node:fs/promises';
import { staleEntries, type ManifestEntry, type RemoteImage } from '../../images/workspace.js';
import { errorMessage } from '../../lib/errors.js';
import { formatBytes } from '../../lib/bytes.js';
import type { ModimgSession } from './session.js';

/** Drops clean local copies older than an hour that equal the head node's (seed 003). */
export async function evictStale(session: ModimgSession): Promise<void> {
  const manifest = await session.workspace.load();
  if (Object.keys(manifest.images).length === 0) return;
  let remote: RemoteImage[];
  try {
    remote = await session.remoteImages();
  } catch (err) {
    session.ctx.err(`WARNING: cannot check local copies against the head node: ${errorMessage(err)}\n`);
    return;
  }
  for (const name of await session.workspace.evict(staleEntries(manifest, remote, Date.now()))) {
    session.say(`evicted the local copy of ${name} (older than an hour, identical to the head node's)`);
  }
}

/** `cw-modimg --ls`: the workspace's images and the head node's. */
export async function listImages(session: ModimgSession): Promise<void> {
  await evictStale(session);
  const manifest = await session.workspace.load();
  const lines = [`Local images (${session.workspace.dir})`];
  const names = Object.keys(manifest.images).sort();
  if (names.length === 0) lines.push('  (none)');
  for (const n of names) {
    const e = manifest.images[n] as ManifestEntry;
    const size = e.file ? await stat(session.workspace.abs(e.file)).then((s) => formatBytes(s.size), () => 'file missing') : 'not packed';
    const notes = [e.uid ? `uid ${e.uid}` : 'not uploaded', size, `updated ${e.updated}`];
    if (e.root) notes.push('unpacked');
    if (e.modified) notes.push('changed since packing');
    lines.push(`  ${n}  (${notes.join(', ')})`);
  }
  session.ctx.out(`${lines.join('\n')}\n`);
  const remote = [...(await session.remoteImages())].sort((x, y) => x.name.localeCompare(y.name));
  const rlines = ['Head node images'];
  if (remote.length === 0) rlines.push('  (none)');
  for (const img of remote) {
    const content = img.checksum ? `${formatBytes(img.size ?? 0)}, ${img.checksum.slice(0, 19)}…` : 'no content';
    rlines.push(`  ${img.name}  (${content})`);
  }
  session.ctx.out(`${rlines.join('\n')}\n`);
}

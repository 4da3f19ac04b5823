// Opening an image to work on: the local copy, downloaded from the head node when there is none, and
// unpacked into `roots/NAME` when its files are needed.
import { rename, rm } from 'node:fs/promises';
import { extractCwsquash } from '../../images/cwsquash/index.js';
import { exists, type ManifestEntry } from '../../images/workspace.js';
import { ExitError } from '../../lib/errors.js';
import { downloadImage } from './download.js';
import type { ModimgSession } from './session.js';

/** The manifest entry of `name`, downloading the head node's image when there is no local copy. */
export async function openImage(session: ModimgSession, name: string, needRoot: boolean): Promise<ManifestEntry> {
  let entry = await session.workspace.entry(name);
  if (!entry) entry = await downloadImage(session, name);
  if (needRoot && !(entry.root && (await exists(session.workspace.abs(entry.root))))) {
    if (!entry.file || !(await exists(session.workspace.abs(entry.file)))) {
      throw new ExitError(`local image ${name} has neither an image file nor an unpacked root; run cw-modimg -i ${name} --delete`);
    }
    const root = session.workspace.rootPath(name);
    const partial = `${root}.partial`;
    await rm(partial, { recursive: true, force: true });
    const file = session.workspace.abs(entry.file);
    await session.reporter.step(`Unpacking ${name}`, (s) => extractCwsquash(file, partial, { onProgress: (p) => s.percent(p.percent) }));
    await rm(root, { recursive: true, force: true });
    await rename(partial, root);
    entry = { ...entry, root: `roots/${name}` };
    await session.workspace.put(name, { ...entry, updated: entry.updated });
  }
  return entry;
}

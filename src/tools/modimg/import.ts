// cw-modimg --import: a new root from a docker-archive tarball or an image in the local engine.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { importDockerArchive, parseImportSource, saveEngineImage } from '../../images/builders/oci.js';
import { buildRoot, refuseExisting } from './create.js';
import type { ModimgSession } from './session.js';

/** `cw-modimg --import SOURCE --set-name NAME`: a new root from a docker archive or an engine's image. */
export async function importImage(session: ModimgSession, name: string, spec: string): Promise<void> {
  await refuseExisting(session, name);
  const source = parseImportSource(spec);
  await buildRoot(session, name, `Importing ${name} from ${spec}`, async (dir, s) => {
    if (source.kind === 'archive') {
      await importDockerArchive(source.file, dir, session.workspace.dir, (l) => s.line(l));
      return;
    }
    const tarball = session.workspace.abs(`.import-${randomBytes(4).toString('hex')}.tar`);
    try {
      await saveEngineImage(source.image, tarball, (l) => s.line(l));
      await importDockerArchive(tarball, dir, session.workspace.dir, (l) => s.line(l), source.image);
    } finally {
      await rm(tarball, { force: true });
    }
  });
}

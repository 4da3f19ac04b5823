// Downloading the head node's image into the workspace, through the API client, with its checksum checked.
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { sha256File } from '../../images/cwsquash/index.js';
import type { ManifestEntry } from '../../images/workspace.js';
import { ExitError } from '../../lib/errors.js';
import { formatBytes } from '../../lib/bytes.js';
import type { ModimgSession } from './session.js';

/** Downloads the head node's image `name` (nginx serves it at /images/<uid>.img) and checks it. */
export async function downloadImage(session: ModimgSession, name: string): Promise<ManifestEntry> {
  const remote = await session.remoteImage(name);
  if (!remote) throw new ExitError(`no image ${name} on the head node or in the workspace ${session.workspace.dir}`);
  if (!remote.checksum) {
    throw new ExitError(`image ${name} on the head node has no content yet; make it with cw-modimg --create --set-name ${name} --upload`);
  }
  const api = session.ctx.api();
  const url = imageUrl(api.baseUrl, remote.uid);
  const fileRel = session.workspace.fileName(name, remote.uid);
  const dest = session.workspace.abs(fileRel);
  const part = `${dest}.${randomBytes(4).toString('hex')}.part`;
  try {
    await session.reporter.step(`Downloading ${name}`, (s) =>
      api.download(url, () => createWriteStream(part, { mode: 0o600 }), {
        onProgress: (done, announced) => {
          const total = Number(announced ?? remote.size ?? 0);
          if (total > 0) s.percent((done / total) * 100, `${formatBytes(done)} of ${formatBytes(total)}`);
        },
      }),
    );
    const sum = await sha256File(part);
    if (sum !== remote.checksum) throw new ExitError(`downloaded image ${name} has checksum ${sum} but the head node says ${remote.checksum}; try again`);
    await rename(part, dest);
  } finally {
    await rm(part, { force: true });
  }
  return session.workspace.put(name, { uid: remote.uid, checksum: remote.checksum, file: fileRel });
}

/** nginx serves images at `/images/<uid>.img` beside the API: `http://head/api/v1` -> `http://head/images/u.img`. */
export function imageUrl(baseUrl: string, uid: string): string {
  const u = new URL(baseUrl);
  const prefix = u.pathname.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
  return `${u.origin}${prefix}/images/${encodeURIComponent(uid)}.img`;
}

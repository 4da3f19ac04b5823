// cw-modimg --upload: the packed image file to the head node through the API client.
import { createReadStream } from 'node:fs';
import { rename, stat } from 'node:fs/promises';
import { checkUploadTarget, parseRemoteImage, type ManifestEntry, type RemoteImage } from '../../images/workspace.js';
import { ExitError } from '../../lib/errors.js';
import { formatBytes } from '../../lib/bytes.js';
import { formatSeconds } from './report.js';
import type { ModimgSession } from './session.js';

/** The API's upload limit (PUT /image/:id/content). */
const UPLOAD_LIMIT = 512 * 1024 * 1024;

/** Sends the packed image to the head node (creating the image there when it is new) and checks the stored checksum. */
export async function uploadImage(session: ModimgSession, name: string, entry: ManifestEntry): Promise<void> {
  if (!entry.file || !entry.checksum) throw new ExitError(`local image ${name} is not packed; add --overwrite or --upload after changing it`);
  const api = session.ctx.api();
  const remote = await session.remoteImage(name);
  checkUploadTarget(name, entry, remote);
  if (remote && remote.checksum === entry.checksum) {
    if (entry.uid !== remote.uid) await session.workspace.put(name, { ...entry, uid: remote.uid });
    session.say(`image ${name} on the head node is already up to date`);
    return;
  }
  if (remote?.checksum && !session.args.overwrite) {
    const yes = session.interactive && (await session.ask(`Replace the content of image ${name} on the head node?`, false));
    if (!yes) throw new ExitError(`image ${name} on the head node already has content; add --overwrite to replace it`);
  }
  const file = session.workspace.abs(entry.file);
  const size = (await stat(file)).size;
  if (size > UPLOAD_LIMIT) throw new ExitError(`image ${name} is ${formatBytes(size)}, more than the head node's ${formatBytes(UPLOAD_LIMIT)} upload limit`);
  let target = remote;
  let created = false;
  if (!target) {
    target = parseRemoteImage(await api.post<unknown>('/images', { name }), 'POST /images');
    created = true;
  }
  const id = encodeURIComponent(target.uid);
  let answer: RemoteImage;
  const started = Date.now();
  try {
    const stored = await session.reporter.step(`Uploading ${name} (${formatBytes(size)})`, (s) =>
      api.upload<unknown>(
        `/image/${id}/content`,
        {
          size,
          open: () => createReadStream(file),
          onProgress: (done) => s.percent((done / size) * 100, `${formatBytes(done)} of ${formatBytes(size)}`),
        },
        undefined,
        { 'x-checksum': entry.checksum as string },
      ),
    );
    answer = parseRemoteImage(stored, `PUT /image/${id}/content`);
  } catch (err) {
    if (created) await api.delete(`/image/${id}`).catch(() => {});
    throw err;
  }
  if (answer.checksum !== entry.checksum) throw new ExitError(`the head node stored checksum ${String(answer.checksum)} for ${name}, expected ${entry.checksum}`);
  let fileRel = entry.file;
  const wanted = session.workspace.fileName(name, target.uid);
  if (fileRel !== wanted) {
    await rename(file, session.workspace.abs(wanted));
    fileRel = wanted;
  }
  await session.workspace.put(name, { ...entry, uid: target.uid, file: fileRel });
  const secs = (Date.now() - started) / 1000;
  session.say(`uploaded ${name} (uid ${target.uid}, ${formatBytes(size)} in ${formatSeconds(secs * 1000)}, ${formatBytes(size / Math.max(secs, 0.001))}/s)`);
}

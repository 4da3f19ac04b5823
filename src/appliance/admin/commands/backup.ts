import { backupFileName } from '../../../lib/backup-archive.js';
import { ExitError } from '../../../lib/errors.js';
import { packageInfo } from '../../api/package-info.js';
import { BACKUP_NAME_RE, makeBackup } from '../../backup/backup.js';
import { snapshotterOf } from '../../db/snapshot.js';
import { withStore, type CommandContext } from '../context.js';

/**
 * `cw-appliance backup [--output NAME]`: writes a backup archive into the storage's backup/ directory
 * (default name `cw-backup-TIMESTAMP.tar.gz`) and prints one JSON line: its name, size and manifest
 * summary. Nothing secret is printed: the archive's content stays in the file.
 */
export async function backup(ctx: CommandContext, output: string | undefined, now: () => Date = () => new Date()): Promise<void> {
  const fileName = output ?? backupFileName(now());
  if (!BACKUP_NAME_RE.test(fileName)) throw new ExitError(`--output must be a plain file name in the backup directory, not ${JSON.stringify(fileName.slice(0, 60))}`);
  let result;
  try {
    // The head's own database: its SQLite file, or the cluster's data in etcd.
    result = await withStore(ctx, (store) => makeBackup({ paths: ctx.paths, snapshotter: snapshotterOf(ctx.paths, store), fileName, productVersion: packageInfo().version, now }));
  } catch (err) {
    throw new ExitError(`backup failed: ${(err as Error).message}`);
  }
  const { manifest } = result;
  ctx.out(
    JSON.stringify({
      file: fileName,
      size: result.size,
      productVersion: manifest.productVersion,
      schemaVersion: manifest.schemaVersion,
      createdAt: manifest.createdAt,
      members: manifest.members.map((m) => m.path),
    }),
  );
}

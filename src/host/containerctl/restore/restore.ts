// `cw-containerctl start --restore FILE`: the archive is checked from end to end before anything is
// written (manifest, member names and types, checksums, schema and product version), then extracted into a
// private staging directory inside the storage directory and moved into place — all or nothing.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BACKUP_DIRS, BackupArchiveError, DATABASE_SCHEMA_VERSION, readBackupArchive, type BackupManifest } from '../../../lib/backup-archive.js';
import { ExitError } from '../../../lib/errors.js';
import { PRIVATE_DIR_MODE, STORAGE_DIRS, prepareStorage } from '../../../lib/storage-layout.js';

export interface RestoreOptions {
  /** The backup archive. */
  file: string;
  storageDir: string;
  /** Restore over an existing database (kept aside as `db.before-restore-TIMESTAMP`). */
  force: boolean;
  /** The version of the image that will run the restored storage (its label), when known. */
  imageVersion?: string | undefined;
  now?: () => Date;
}

export interface RestoreResult {
  manifest: BackupManifest;
  /** Directories moved aside (`db.before-restore-...`), relative to the storage directory. */
  keptAside: string[];
}

/** `0.10.0` > `0.9.1`: numeric comparison of the dotted release part; pre-release suffixes are ignored. */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) => (/^(\d+)\.(\d+)\.(\d+)/.exec(v) ?? []).slice(1).map(Number);
  const [pa, pb] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Checks the archive only (nothing is written): its manifest, or an ExitError saying what is wrong. */
export async function verifyBackup(file: string, imageVersion?: string): Promise<BackupManifest> {
  let manifest: BackupManifest;
  try {
    manifest = await readBackupArchive(file);
  } catch (err) {
    if (err instanceof BackupArchiveError) throw new ExitError(`${file} cannot be restored: ${err.message}; nothing was changed`);
    throw err;
  }
  if (manifest.backend !== 'sqlite') {
    throw new ExitError(`${file} holds a ${manifest.backend} database; this cw-headnode restores sqlite backups only; nothing was changed`);
  }
  if (manifest.schemaVersion > DATABASE_SCHEMA_VERSION) {
    throw new ExitError(
      `${file} holds database schema ${manifest.schemaVersion}, newer than this cw-containerctl knows (${DATABASE_SCHEMA_VERSION}); use cw-headnode ${manifest.productVersion} or newer; nothing was changed`,
    );
  }
  if (imageVersion && compareVersions(manifest.productVersion, imageVersion) > 0) {
    throw new ExitError(`${file} was made by cw-headnode ${manifest.productVersion}; the image is ${imageVersion}: start a newer image; nothing was changed`);
  }
  return manifest;
}

/** The restored parts that already hold something in the storage directory (e.g. `db/cw.sqlite`). */
async function occupied(storageDir: string): Promise<string[]> {
  const found: string[] = [];
  for (const dir of BACKUP_DIRS) {
    const names = await readdir(join(storageDir, dir)).catch(() => [] as string[]);
    if (names.length > 0) found.push(dir === 'db' && names.includes('cw.sqlite') ? 'db/cw.sqlite' : `${dir}/`);
  }
  return found;
}

function stamp(when: Date): string {
  return when.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/**
 * Restores the archive into `storageDir`: refused while the storage already holds a database or secrets,
 * unless `force` — then what was there is moved aside (`db.before-restore-20261206T101500Z`, ...), never
 * deleted. A bad archive is found before anything is moved: only renames inside the storage directory
 * happen after the whole archive has been extracted and checked.
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const { file, storageDir } = options;
  const manifest = await verifyBackup(file, options.imageVersion);
  const present = await occupied(storageDir);
  if (present.length > 0 && !options.force) {
    throw new ExitError(
      `storage ${storageDir} already holds ${present.join(', ')}: restore into an empty storage directory, or add --force to keep the old data aside and restore over it; nothing was changed`,
    );
  }
  await prepareStorage(storageDir);
  const staging = join(storageDir, `.restore-${randomBytes(6).toString('hex')}`);
  await mkdir(staging, { mode: PRIVATE_DIR_MODE });
  const keptAside: string[] = [];
  try {
    try {
      // Read and checked again while written: the file may have changed since it was verified.
      const again = await readBackupArchive(file, { extractTo: staging });
      if (JSON.stringify(again) !== JSON.stringify(manifest)) throw new BackupArchiveError('it changed while it was being restored');
    } catch (err) {
      if (err instanceof BackupArchiveError) throw new ExitError(`${file} cannot be restored: ${err.message}; nothing was changed`);
      throw err;
    }
    const suffix = `.before-restore-${stamp((options.now ?? (() => new Date()))())}`;
    const modes = new Map(STORAGE_DIRS.map((d) => [d.dir, d.mode]));
    for (const dir of BACKUP_DIRS) {
      const target = join(storageDir, dir);
      const restored = join(staging, dir);
      const hasRestored = await exists(restored);
      // Everything the backup covers is replaced as a whole (an empty directory of the layout stays).
      if ((await readdir(target).catch(() => [] as string[])).length > 0) {
        await rename(target, `${target}${suffix}`);
        keptAside.push(`${dir}${suffix}`);
      }
      if (hasRestored) {
        await rm(target, { recursive: true, force: true });
        await mkdir(dirname(target), { recursive: true });
        await rename(restored, target);
      } else {
        await mkdir(target, { recursive: true });
      }
      await chmod(target, modes.get(dir) ?? PRIVATE_DIR_MODE);
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  // The appliance renders the rest (authorized_keys, daemon configs, DHCP model) from the database at start.
  await prepareStorage(storageDir);
  return { manifest, keptAside };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

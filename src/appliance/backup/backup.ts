// Making one backup archive of the storage directory: the database (a consistent snapshot, never a file
// copy), the settings it holds, the secrets, the admins' authorized_keys (sshd reads the file; it is only
// rewritten when admins change), the HTTPS certificate, the ssh keys and the admin's template
// overrides. Images, boot files, logs and leases are not in it (images travel with cw-imgctl export).
import { copyFile, lstat, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BACKUP_DIRS, buildManifest, isBackupMemberPath, writeBackupArchive, type BackupManifest } from '../../lib/backup-archive.js';
import { ensurePrivateDir, type StoragePaths } from '../../lib/storage-layout.js';
import type { DatabaseSnapshotter } from '../db/snapshot.js';

/** A name in `backup/` that `cw-appliance backup --output` accepts: no path, nothing hidden. */
export const BACKUP_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Files of the storage directory that are about this boot only, not the head node's state. */
const NOT_BACKED_UP = new Set(['ssh/known_hosts.nodes']);

export interface MakeBackupOptions {
  paths: StoragePaths;
  snapshotter: DatabaseSnapshotter;
  /** The archive's name in `backup/`. */
  fileName: string;
  productVersion: string;
  now?: () => Date;
}

export interface BackupResult {
  /** The archive's full path. */
  file: string;
  size: number;
  manifest: BackupManifest;
}

/** Writes `backup/NAME` (0600): staged in a private directory in `backup/`, which is removed whatever happens. */
export async function makeBackup(options: MakeBackupOptions): Promise<BackupResult> {
  const { paths, snapshotter } = options;
  if (!BACKUP_NAME_RE.test(options.fileName)) throw new Error(`invalid backup file name ${JSON.stringify(options.fileName)}`);
  ensurePrivateDir(paths.backupDir);
  const dest = join(paths.backupDir, options.fileName);
  if (await exists(dest)) throw new Error(`${dest} exists`);
  const createdAt = (options.now ?? (() => new Date()))();
  const staging = await mkdtemp(join(paths.backupDir, '.staging-'));
  try {
    await mkdir(join(staging, 'db'), { mode: 0o700 });
    const { schemaVersion } = await snapshotter.snapshot(join(staging, 'db', 'cw.sqlite'));
    const members = ['db/cw.sqlite'];
    for (const dir of BACKUP_DIRS) {
      if (dir === 'db') continue;
      members.push(...(await copyPlainFiles(join(paths.root, dir), join(staging, dir), dir)));
    }
    const manifest = await buildManifest(staging, members, {
      productVersion: options.productVersion,
      schemaVersion,
      backend: snapshotter.backend,
      createdAt,
    });
    await writeBackupArchive(staging, manifest, dest);
    return { file: dest, size: (await stat(dest)).size, manifest };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Copies the regular files directly in `from` (no links, no subdirectories such as ssh/mux/) to `to`;
 * returns their member paths (`prefix/NAME`). These files are replaced atomically by their writers, so a
 * copy is one version of each.
 */
async function copyPlainFiles(from: string, to: string, prefix: string): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(from)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const members: string[] = [];
  for (const name of names) {
    const member = `${prefix}/${name}`;
    if (!isBackupMemberPath(member) || NOT_BACKED_UP.has(member)) continue;
    const info = await lstat(join(from, name)).catch(() => undefined);
    if (!info?.isFile()) continue;
    await mkdir(to, { recursive: true, mode: 0o700 });
    await copyFile(join(from, name), join(to, name));
    members.push(member);
  }
  return members;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/**
 * Removes what an interrupted backup left in `backup/` (staging directories, temporary archives); called
 * when the API starts, before any backup of its own.
 */
export async function removeBackupLeftovers(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    // Staging directories, temporary archives, and copies `cw-containerctl backup FILE` did not take out.
    if (!/^\.staging-|^\..*\.tmp$|^cw-export-[0-9a-f]+\.tmp$/.test(name)) continue;
    await rm(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

// The backup archive (`cw-containerctl backup`, the appliance's rolling set, `start --restore`): a gzip'd
// tar whose first member is `manifest.json` (product and schema version, time, the sha256 of every other
// member), then the members. The appliance writes it; the host reads it back. An archive is untrusted input
// when read: only regular files under a fixed list of names are accepted, everything is checked against the
// manifest, and nothing is kept unless all of it checks out.
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, openSync } from 'node:fs';
import { chmod, open, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { create as createTar } from 'tar';
import { writeStreamAtomic } from './atomic-write.js';
import { hashTo, readCheckedTar, readSmall } from './checked-tar.js';

export const BACKUP_FORMAT = 'cw-backup';
export const BACKUP_FORMAT_VERSION = 1;
export const MANIFEST_NAME = 'manifest.json';

/**
 * The database schema version this release writes and reads (the last migration's number). The host side
 * checks an archive against it before restoring; a unit test keeps it equal to the appliance's migrations.
 */
export const DATABASE_SCHEMA_VERSION = 3;

/** The storage directory's parts a backup holds, below the storage root (images and boot files are not among them). */
export const BACKUP_DIRS = ['db', 'secrets', 'admins', 'tls', 'ssh', 'etc/templates'] as const;
export type BackupDir = (typeof BACKUP_DIRS)[number];

// One level of plain names under the known directories: no `..`, no hidden files, no subdirectories.
const MEMBER_RE = /^(?:db\/cw\.sqlite|(?:secrets|admins|tls|ssh|etc\/templates)\/[A-Za-z0-9_][A-Za-z0-9._-]{0,127})$/;
const MANIFEST_MAX_BYTES = 1 << 20;
const SHA256_RE = /^[0-9a-f]{64}$/;

export interface BackupMember {
  /** Path below the storage root, e.g. `db/cw.sqlite`. */
  path: string;
  size: number;
  /** Hex SHA-256 of the content. */
  sha256: string;
}

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  formatVersion: number;
  /** The cw-headnode version that made it. */
  productVersion: string;
  /** The database schema version (the last migration applied). */
  schemaVersion: number;
  /** The store backend the database snapshot is for (`sqlite`). */
  backend: string;
  /** ISO 8601 UTC. */
  createdAt: string;
  members: BackupMember[];
}

/** A problem with an archive that is the archive's fault (corrupt, truncated, foreign, hostile). */
export class BackupArchiveError extends Error {}

/** True for a member path the archive may hold (besides the manifest). */
export function isBackupMemberPath(path: string): boolean {
  return MEMBER_RE.test(path);
}

/** `cw-backup-20261206T101500Z.tar.gz` (or with a `-auto` infix for the scheduled ones). */
export function backupFileName(when: Date, kind: 'manual' | 'auto' = 'manual'): string {
  const stamp = when.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
  return `cw-backup-${kind === 'auto' ? 'auto-' : ''}${stamp}.tar.gz`;
}

/** Hex SHA-256 of a file, read as a stream. */
export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** The manifest for `members` (paths below `stagingDir`): sizes and checksums are computed here. */
export async function buildManifest(
  stagingDir: string,
  members: readonly string[],
  info: { productVersion: string; schemaVersion: number; backend: string; createdAt: Date },
): Promise<BackupManifest> {
  const list: BackupMember[] = [];
  for (const path of [...members].sort()) {
    if (!isBackupMemberPath(path)) throw new Error(`internal: ${path} is not a backup member path`);
    const file = join(stagingDir, path);
    list.push({ path, size: (await stat(file)).size, sha256: await sha256OfFile(file) });
  }
  return {
    format: BACKUP_FORMAT,
    formatVersion: BACKUP_FORMAT_VERSION,
    productVersion: info.productVersion,
    schemaVersion: info.schemaVersion,
    backend: info.backend,
    createdAt: info.createdAt.toISOString(),
    members: list,
  };
}

/**
 * Writes the archive of `manifest`'s members (files below `stagingDir`) to `dest`, mode 0600: into a
 * temporary name in the same directory, flushed, then renamed — `dest` is never a partial file.
 */
export async function writeBackupArchive(stagingDir: string, manifest: BackupManifest, dest: string): Promise<void> {
  const manifestFile = join(stagingDir, MANIFEST_NAME);
  const fh = await open(manifestFile, 'wx', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(manifest, null, 2)}\n`);
  } finally {
    await fh.close();
  }
  const pack = createTar({ gzip: true, cwd: stagingDir, portable: true, noDirRecurse: true }, [MANIFEST_NAME, ...manifest.members.map((m) => m.path)]);
  await writeStreamAtomic(dest, pack, { mode: 0o600 });
}

/** Parses and checks a manifest's shape; every member path must be an allowed one. */
export function parseManifest(text: string): BackupManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BackupArchiveError('its manifest.json is not JSON');
  }
  const m = value as Partial<BackupManifest> | null;
  if (!m || typeof m !== 'object' || m.format !== BACKUP_FORMAT) throw new BackupArchiveError('it is not a cw-headnode backup (manifest.json has no "format": "cw-backup")');
  if (m.formatVersion !== BACKUP_FORMAT_VERSION) {
    throw new BackupArchiveError(`its format version ${String(m.formatVersion)} is not one this cw-headnode reads (${BACKUP_FORMAT_VERSION}); use a newer cw-containerctl`);
  }
  if (typeof m.productVersion !== 'string' || !/^\d+\.\d+\.\d+[A-Za-z0-9.+-]*$/.test(m.productVersion)) throw new BackupArchiveError('manifest.json: productVersion is missing or invalid');
  if (!Number.isInteger(m.schemaVersion) || (m.schemaVersion as number) < 1) throw new BackupArchiveError('manifest.json: schemaVersion is missing or invalid');
  if (typeof m.backend !== 'string' || !/^[a-z0-9]{1,16}$/.test(m.backend)) throw new BackupArchiveError('manifest.json: backend is missing or invalid');
  if (typeof m.createdAt !== 'string' || Number.isNaN(Date.parse(m.createdAt))) throw new BackupArchiveError('manifest.json: createdAt is missing or invalid');
  if (!Array.isArray(m.members)) throw new BackupArchiveError('manifest.json: members is missing');
  const seen = new Set<string>();
  for (const member of m.members as unknown[]) {
    const mm = member as Partial<BackupMember> | null;
    if (!mm || typeof mm.path !== 'string' || !isBackupMemberPath(mm.path)) {
      throw new BackupArchiveError(`manifest.json names a member that is not allowed: ${JSON.stringify(mm?.path ?? mm).slice(0, 80)}`);
    }
    if (!Number.isSafeInteger(mm.size) || (mm.size as number) < 0 || typeof mm.sha256 !== 'string' || !SHA256_RE.test(mm.sha256)) {
      throw new BackupArchiveError(`manifest.json: member ${mm.path} has no valid size and sha256`);
    }
    if (seen.has(mm.path)) throw new BackupArchiveError(`manifest.json names ${mm.path} twice`);
    seen.add(mm.path);
  }
  if (!seen.has('db/cw.sqlite')) throw new BackupArchiveError('manifest.json has no database (db/cw.sqlite)');
  return m as BackupManifest;
}

export interface ReadBackupOptions {
  /**
   * Write each member below this directory (which must exist and be empty) as it is read; files are
   * created 0600 and given their mode at the end. Without it the archive is only checked.
   */
  extractTo?: string;
}

/** Permission bits a restored member gets: private for the database, secrets and admin keys, else at most 0644. */
export function memberMode(path: string, archivedMode: number | undefined): number {
  if (path.startsWith('db/') || path.startsWith('secrets/') || path.startsWith('admins/')) return 0o600;
  return (archivedMode ?? 0o600) & 0o044 ? 0o644 : 0o600;
}

/**
 * Reads a backup archive from start to end and checks it: `manifest.json` first, then only the regular
 * files it names (each once, with its size and sha256), nothing else. Returns the manifest; throws
 * BackupArchiveError for a corrupt, truncated, foreign or hostile archive.
 */
export async function readBackupArchive(file: string, options: ReadBackupOptions = {}): Promise<BackupManifest> {
  let manifest: BackupManifest | undefined;
  const found = new Map<string, { size: number; sha256: string }>();
  const written: Array<{ path: string; mode: number }> = [];
  await readCheckedTar(file, {
    firstMember: MANIFEST_NAME,
    kind: 'a cw-headnode backup',
    error: (message) => new BackupArchiveError(message),
    onFile: (entry, fail) => {
      const path = entry.path;
      if (path === MANIFEST_NAME) {
        if (manifest !== undefined) return 'it holds manifest.json twice';
        if (entry.size > MANIFEST_MAX_BYTES) return 'its manifest.json is too large';
        readSmall(entry, fail, (text) => {
          manifest = parseManifest(text);
        });
        return undefined;
      }
      if (!isBackupMemberPath(path)) return `it holds ${JSON.stringify(path.slice(0, 100))}, which is not a path a backup may contain`;
      if (!manifest?.members.some((m) => m.path === path)) return `it holds ${path}, which manifest.json does not name`;
      if (found.has(path) || written.some((w) => w.path === path)) return `it holds ${path} twice`;
      let fd: number | undefined;
      if (options.extractTo) {
        const target = join(options.extractTo, path);
        mkdirSyncPrivate(dirname(target), options.extractTo);
        fd = openSync(target, 'wx', 0o600);
        written.push({ path, mode: memberMode(path, entry.mode) });
      }
      hashTo(entry, fd, fail, (got) => found.set(path, got));
      return undefined;
    },
  });
  if (!manifest) throw new BackupArchiveError('it holds no manifest.json: not a cw-headnode backup');
  for (const m of manifest.members) {
    const got = found.get(m.path);
    if (!got) throw new BackupArchiveError(`it lacks ${m.path}, which manifest.json names (truncated?)`);
    if (got.size !== m.size || got.sha256 !== m.sha256) {
      throw new BackupArchiveError(`${m.path} does not match its checksum in manifest.json (the archive is damaged)`);
    }
  }
  if (options.extractTo) {
    for (const w of written) await chmod(join(options.extractTo, w.path), w.mode);
  }
  return manifest;
}

// Directories below the extraction root, 0700 (the layout's modes are given when they are moved into place).
// Synchronous: entries arrive in order and their data must go to an open file before the next one.
function mkdirSyncPrivate(dir: string, root: string): void {
  if (dir !== root && !dir.startsWith(`${root}/`)) throw new Error(`internal: ${dir} is outside ${root}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ensurePrivateDir, type StoragePaths } from '../lib/storage-layout.js';

/** Runtime sockets under `/run/cw` (not persistent). */
export interface RuntimePaths {
  runDir: string;
  apiSocket: string;
  supervisorSocket: string;
}

export const DEFAULT_RUN_DIR = '/run/cw';

/** Socket paths; `CW_API_SOCKET` and `CW_SUPERVISOR_SOCKET` override the defaults under `/run/cw`. */
export function runtimePaths(env: NodeJS.ProcessEnv = process.env): RuntimePaths {
  return {
    runDir: DEFAULT_RUN_DIR,
    apiSocket: env.CW_API_SOCKET || join(DEFAULT_RUN_DIR, 'api.sock'),
    supervisorSocket: env.CW_SUPERVISOR_SOCKET || join(DEFAULT_RUN_DIR, 'supervisor.sock'),
  };
}

/**
 * Replaces `file` with `data` so readers see either the old or the new content, never a mix:
 * a temporary file in the same directory gets the data and `mode`, is flushed, then renamed over `file`.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  writePrivateThenFlush(tmp, data, mode);
  try {
    renameSync(tmp, file);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
  syncDir(dirname(file));
}

export interface Secrets {
  dbPassword: string;
}

/**
 * Creates `secrets/` (0700) and `secrets/db-password` (0600, 32 random bytes base64url) on first use and
 * returns the secrets; later calls, from any process, return the same values.
 */
export function ensureSecrets(paths: StoragePaths): Secrets {
  ensurePrivateDir(paths.secretsDir);
  return { dbPassword: ensureSecretFile(paths.dbPasswordFile, () => randomBytes(32).toString('base64url')) };
}

// Two processes (API and cw-appliance) may race on first start: the value is written to a temporary file
// and hard-linked into place, which fails if the name exists, so exactly one value ever wins.
function ensureSecretFile(file: string, generate: () => string): string {
  const existing = readSecret(file);
  if (existing !== undefined) return existing;
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  writePrivateThenFlush(tmp, `${generate()}\n`, 0o600);
  try {
    linkSync(tmp, file);
    syncDir(dirname(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  const value = readSecret(file);
  if (value === undefined) throw new Error(`${file} could not be created`);
  return value;
}

function readSecret(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const value = text.trim();
  if (!/^[A-Za-z0-9_-]{16,}$/.test(value)) throw new Error(`${file} is corrupt; remove it to generate a new secret`);
  if ((statSync(file).mode & 0o777) !== 0o600) chmodSync(file, 0o600);
  return value;
}

function writePrivateThenFlush(file: string, data: string | Uint8Array, mode: number): void {
  // Created 0600 so the content is never readable by others, then set to the wanted mode (umask ignored).
  const fd = openSync(file, 'wx', 0o600);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    fchmodSync(fd, mode);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(file);
    throw err;
  }
  closeSync(fd);
}

function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Directory fsync is best effort (not supported on every filesystem).
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { syncDirectorySync, writeNewFileSync } from '../lib/atomic-write.js';
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
  writeNewFileSync(tmp, `${generate()}\n`, { mode: 0o600 });
  try {
    linkSync(tmp, file);
    syncDirectorySync(dirname(file));
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

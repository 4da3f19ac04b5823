import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { syncDirectorySync, writeNewFileSync } from '../lib/atomic-write.js';

/** Every path of the storage directory (ARCHITECTURE.md, "Storage directory"). */
export interface StoragePaths {
  root: string;
  /** `db/` and the SQLite database inside it. */
  dbDir: string;
  dbFile: string;
  secretsDir: string;
  dbPasswordFile: string;
  /** sshd host keys. */
  sshDir: string;
  adminsDir: string;
  authorizedKeysFile: string;
  /** Admin overrides of the built-in templates. */
  templatesDir: string;
  /** Rendered daemon configs. */
  generatedDir: string;
  bootDir: string;
  imagesDir: string;
  clientPkgsDir: string;
  dhcpDir: string;
  dhcpLeasesFile: string;
  logsDir: string;
}

/** Runtime sockets under `/run/cw` (not persistent). */
export interface RuntimePaths {
  runDir: string;
  apiSocket: string;
  supervisorSocket: string;
}

export const DEFAULT_STORAGE = '/var/lib/cw';
export const DEFAULT_RUN_DIR = '/run/cw';

/** The storage layout under `root`, e.g. `storagePaths('/var/lib/cw').dbFile` is `/var/lib/cw/db/cw.sqlite`. */
export function storagePaths(root: string = process.env.CW_STORAGE || DEFAULT_STORAGE): StoragePaths {
  const at = (...parts: string[]): string => join(root, ...parts);
  return {
    root,
    dbDir: at('db'),
    dbFile: at('db', 'cw.sqlite'),
    secretsDir: at('secrets'),
    dbPasswordFile: at('secrets', 'db-password'),
    sshDir: at('ssh'),
    adminsDir: at('admins'),
    authorizedKeysFile: at('admins', 'authorized_keys'),
    templatesDir: at('etc', 'templates'),
    generatedDir: at('etc', 'generated'),
    bootDir: at('boot'),
    imagesDir: at('images'),
    clientPkgsDir: at('clientpkgs'),
    dhcpDir: at('dhcp'),
    dhcpLeasesFile: at('dhcp', 'dhcpd.leases'),
    logsDir: at('logs'),
  };
}

/** Socket paths; `CW_API_SOCKET` and `CW_SUPERVISOR_SOCKET` override the defaults under `/run/cw`. */
export function runtimePaths(env: NodeJS.ProcessEnv = process.env): RuntimePaths {
  return {
    runDir: DEFAULT_RUN_DIR,
    apiSocket: env.CW_API_SOCKET || join(DEFAULT_RUN_DIR, 'api.sock'),
    supervisorSocket: env.CW_SUPERVISOR_SOCKET || join(DEFAULT_RUN_DIR, 'supervisor.sock'),
  };
}

/** Creates every directory of the layout that is missing (private ones 0700); existing ones are left as they are. */
export function ensureStorageDirs(paths: StoragePaths): void {
  const privateDirs = [paths.dbDir, paths.secretsDir, paths.sshDir, paths.adminsDir];
  const publicDirs = [
    paths.templatesDir,
    paths.generatedDir,
    paths.bootDir,
    paths.imagesDir,
    paths.clientPkgsDir,
    paths.dhcpDir,
    paths.logsDir,
  ];
  mkdirSync(paths.root, { recursive: true, mode: 0o755 });
  for (const dir of privateDirs) ensurePrivateDir(dir);
  for (const dir of publicDirs) mkdirSync(dir, { recursive: true, mode: 0o755 });
}

/** Creates `dir` (and parents) if missing and makes it 0700 whether or not it existed. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((statSync(dir).mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
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

// The storage directory (ARCHITECTURE.md, "Storage directory"): its paths and the mode of every
// directory. The host's `start` prepares it before the container exists and the appliance's supervisor
// prepares it again on every start; both go through `prepareStorage`, so they cannot disagree.
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Database, secrets, host keys and admin keys: root only. */
export const PRIVATE_DIR_MODE = 0o700;
/** Traversable by nginx's www-data and tftpd's unprivileged user, writable by root only (sshd StrictModes). */
export const PUBLIC_DIR_MODE = 0o755;

/** Where the storage directory is mounted inside the container (and the appliance's default). */
export const CONTAINER_STORAGE = '/var/lib/cw';

/** One directory of the layout: its path below the storage root (`.` is the root) and its mode. */
export interface StorageDir {
  dir: string;
  mode: number;
}

const DIRS = {
  root: { dir: '.', mode: PUBLIC_DIR_MODE },
  dbDir: { dir: 'db', mode: PRIVATE_DIR_MODE },
  secretsDir: { dir: 'secrets', mode: PRIVATE_DIR_MODE },
  sshDir: { dir: 'ssh', mode: PRIVATE_DIR_MODE },
  adminsDir: { dir: 'admins', mode: PRIVATE_DIR_MODE },
  etcDir: { dir: 'etc', mode: PUBLIC_DIR_MODE },
  templatesDir: { dir: 'etc/templates', mode: PUBLIC_DIR_MODE },
  generatedDir: { dir: 'etc/generated', mode: PUBLIC_DIR_MODE },
  bootDir: { dir: 'boot', mode: PUBLIC_DIR_MODE },
  imagesDir: { dir: 'images', mode: PUBLIC_DIR_MODE },
  /** Boot files and images by content (`<sha256 hex>`, hard links of the files in boot/ and images/). */
  blobsDir: { dir: 'blobs', mode: PUBLIC_DIR_MODE },
  /** Client packages for diskful nodes: admins drop RPMs in rpm/ and DEBs in deb/; tar/ caches converted RPMs. */
  clientPkgsDir: { dir: 'clientpkgs', mode: PUBLIC_DIR_MODE },
  clientRpmDir: { dir: 'clientpkgs/rpm', mode: PUBLIC_DIR_MODE },
  clientDebDir: { dir: 'clientpkgs/deb', mode: PUBLIC_DIR_MODE },
  clientTarDir: { dir: 'clientpkgs/tar', mode: PUBLIC_DIR_MODE },
  clientInstallersDir: { dir: 'clientpkgs/installers', mode: PUBLIC_DIR_MODE },
  tlsDir: { dir: 'tls', mode: PUBLIC_DIR_MODE },
  dhcpDir: { dir: 'dhcp', mode: PUBLIC_DIR_MODE },
  logsDir: { dir: 'logs', mode: PUBLIC_DIR_MODE },
  /** Serial console logs, one per node (`n0.log`): what a console shows may be secret. */
  consolesDir: { dir: 'logs/consoles', mode: PRIVATE_DIR_MODE },
  /** Backup archives (database, settings, secrets): `cw-containerctl backup` and the rolling set. */
  backupDir: { dir: 'backup', mode: PRIVATE_DIR_MODE },
} as const satisfies Record<string, StorageDir>;

/** Every directory of the layout, parents before children. */
export const STORAGE_DIRS: readonly StorageDir[] = Object.values(DIRS);

/** Every path of the storage directory. */
export type StoragePaths = { [K in keyof typeof DIRS]: string } & {
  /** The SQLite database (in `db/`). */
  dbFile: string;
  dbPasswordFile: string;
  /** sshd's AuthorizedKeysFile (in `admins/`). */
  authorizedKeysFile: string;
  dhcpLeasesFile: string;
  /** The API's TLS certificate (chain), public: admins copy it or pin its fingerprint (in `tls/`). */
  tlsCertFile: string;
  /** Its private key, 0600 (in `secrets/`). */
  tlsKeyFile: string;
};

/** The storage layout under `root`, e.g. `storagePaths('/var/lib/cw').dbFile` is `/var/lib/cw/db/cw.sqlite`. */
export function storagePaths(root: string = process.env.CW_STORAGE || CONTAINER_STORAGE): StoragePaths {
  const dirs = Object.fromEntries(Object.entries(DIRS).map(([key, { dir }]) => [key, dir === '.' ? root : join(root, dir)])) as {
    [K in keyof typeof DIRS]: string;
  };
  return {
    ...dirs,
    dbFile: join(dirs.dbDir, 'cw.sqlite'),
    dbPasswordFile: join(dirs.secretsDir, 'db-password'),
    authorizedKeysFile: join(dirs.adminsDir, 'authorized_keys'),
    dhcpLeasesFile: join(dirs.dhcpDir, 'dhcpd.leases'),
    tlsCertFile: join(dirs.tlsDir, 'server.crt'),
    tlsKeyFile: join(dirs.secretsDir, 'tls-server.key'),
  };
}

/**
 * Creates every missing directory of the layout and gives each its mode, whether it was just created or
 * left by an older version (which made `db/`, `ssh/` and `admins/` 0755). Returns the directories it
 * created (`['.', 'db', ...]` on an empty storage). Modes are only changed where they differ, so a
 * directory already right is never touched.
 */
export async function prepareStorage(root: string): Promise<string[]> {
  const info = await stat(root).catch(() => null);
  if (info && !info.isDirectory()) throw new Error(`storage ${root} is not a directory`);
  const created: string[] = [];
  for (const { dir, mode } of STORAGE_DIRS) {
    const full = join(root, dir);
    const existed = await stat(full).then(
      () => true,
      () => false,
    );
    await mkdir(full, { recursive: true, mode });
    // mkdir's mode passes through the umask and leaves existing directories alone: set it exactly.
    if (((await stat(full)).mode & 0o777) !== mode) await chmod(full, mode);
    if (!existed) created.push(dir);
  }
  return created;
}

/** Creates `dir` (and parents) if missing and makes it 0700 whether or not it existed. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if ((statSync(dir).mode & 0o777) !== PRIVATE_DIR_MODE) chmodSync(dir, PRIVATE_DIR_MODE);
}

import { chmod, mkdir, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { ExitError } from '../../../lib/errors.js';

export const DEFAULT_STORAGE = 'cw_container_storage';

/** Subdirectories of the storage directory (ARCHITECTURE.md, "Storage directory") and their modes. */
export const STORAGE_LAYOUT: readonly { path: string; mode: number }[] = [
  { path: 'db', mode: 0o755 },
  { path: 'secrets', mode: 0o700 },
  { path: 'ssh', mode: 0o755 },
  { path: 'admins', mode: 0o755 },
  { path: 'etc', mode: 0o755 },
  { path: 'etc/templates', mode: 0o755 },
  { path: 'etc/generated', mode: 0o755 },
  { path: 'boot', mode: 0o755 },
  { path: 'images', mode: 0o755 },
  { path: 'clientpkgs', mode: 0o755 },
  { path: 'dhcp', mode: 0o755 },
  { path: 'logs', mode: 0o755 },
];

/** The storage directory as an absolute path (default `./cw_container_storage`). */
export function resolveStorageDir(dir: string | undefined, cwd: string): string {
  const chosen = dir?.trim() || DEFAULT_STORAGE;
  return isAbsolute(chosen) ? resolve(chosen) : resolve(cwd, chosen);
}

/** Refuses a storage path that exists but is not a directory; true when it already exists. */
export async function checkStorageDir(dir: string): Promise<boolean> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) throw new ExitError(`storage path ${dir} exists and is not a directory; nothing changed`);
    return true;
  } catch (err) {
    if (err instanceof ExitError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new ExitError(`cannot use storage path ${dir}: ${(err as Error).message}`);
  }
}

/** Creates the storage directory and its layout; existing directories keep their content and mode (secrets/ stays 0700). */
export async function ensureStorageLayout(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true, mode: 0o755 });
  if (created !== undefined) await chmod(dir, 0o755);
  for (const entry of STORAGE_LAYOUT) {
    const path = join(dir, entry.path);
    const made = await mkdir(path, { recursive: true, mode: entry.mode });
    // mkdir's mode is filtered by the umask; set it exactly on what we create, and always tighten secrets/.
    if (made !== undefined || entry.mode === 0o700) await chmod(path, entry.mode);
  }
}

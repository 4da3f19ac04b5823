import { chmod, mkdir, stat } from 'node:fs/promises';
import * as path from 'node:path';

/** The storage directory's layout (ARCHITECTURE.md) with the mode each directory gets. */
export const STORAGE_DIRS: ReadonlyArray<{ dir: string; mode: number }> = [
  // Traversable by nginx's www-data and tftpd's unprivileged user, writable by root only (sshd StrictModes).
  { dir: '.', mode: 0o755 },
  { dir: 'db', mode: 0o700 },
  { dir: 'secrets', mode: 0o700 },
  { dir: 'ssh', mode: 0o700 },
  { dir: 'admins', mode: 0o700 },
  { dir: 'etc', mode: 0o755 },
  { dir: 'etc/templates', mode: 0o755 },
  { dir: 'etc/generated', mode: 0o755 },
  { dir: 'boot', mode: 0o755 },
  { dir: 'images', mode: 0o755 },
  { dir: 'clientpkgs', mode: 0o755 },
  { dir: 'dhcp', mode: 0o755 },
  { dir: 'logs', mode: 0o755 },
];

/** Creates the storage subdirectories and sets their modes; returns the ones it created. */
export async function ensureStorageLayout(storage: string): Promise<string[]> {
  const created: string[] = [];
  const root = await stat(storage).catch(() => null);
  if (root && !root.isDirectory()) throw new Error(`storage ${storage} is not a directory`);
  for (const { dir, mode } of STORAGE_DIRS) {
    const full = path.join(storage, dir);
    const existed = await stat(full).then(
      () => true,
      () => false,
    );
    await mkdir(full, { recursive: true, mode });
    await chmod(full, mode);
    if (!existed) created.push(dir);
  }
  return created;
}

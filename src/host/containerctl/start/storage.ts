import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { ExitError } from '../../../lib/errors.js';

export const DEFAULT_STORAGE = 'cw_container_storage';

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

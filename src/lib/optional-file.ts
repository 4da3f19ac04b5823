// Files that may simply not be there yet (a model not written, a join that never happened, an optional
// certificate): their content, or nothing — any other failure (permissions, a directory) still throws.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

const missing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** The file's text, or null when there is no such file. */
export async function readTextIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (missing(err)) return null;
    throw err;
  }
}

/** The file's bytes, or undefined when there is no such file (for start-up code that runs once). */
export function readIfExistsSync(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch (err) {
    if (missing(err)) return undefined;
    throw err;
  }
}

import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../../lib/atomic-write.js';

export interface InstallResult {
  /** True when the file now holds the new content. */
  installed: boolean;
  /** Validator output when the new content was refused (the previous file is kept). */
  refused?: string;
}

/**
 * Installs a rendered config: unchanged content is left alone; otherwise it is written next to the
 * target, checked with `validate(candidatePath)` (which throws with the daemon's complaint), and only
 * then renamed over the working file. A refused config keeps the last good one, if there is one.
 */
export async function installConfig(
  target: string,
  content: string,
  validate?: (candidate: string) => Promise<void>,
  mode = 0o644,
): Promise<InstallResult> {
  const current = await readFile(target, 'utf8').catch(() => null);
  if (current === content) return { installed: true };
  const candidate = `${target}.new`;
  await mkdir(path.dirname(candidate), { recursive: true });
  await writeFileAtomic(candidate, content, { mode });
  if (validate) {
    try {
      await validate(candidate);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (current === null) throw new Error(`${path.basename(target)} rejected and no previous version to keep: ${reason}`);
      return { installed: false, refused: reason };
    }
  }
  await rename(candidate, target);
  return { installed: true };
}

/** Copies `from` to `to` when `to` is missing or differs (by SHA-256); returns whether it copied. */
export async function copyIfChanged(from: string, to: string, mode = 0o644): Promise<boolean> {
  const content = await readFile(from);
  const dst = await readFile(to).then(digest, () => null);
  if (digest(content) === dst) return false;
  await writeFileAtomic(to, content, { mode });
  return true;
}

function digest(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/** True when `file` exists (any type). */
export async function pathExists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GeneratedKey {
  /** The `.pub` line as ssh-keygen wrote it (without the newline). */
  publicLine: string;
  /** The private key file's text. */
  privateText: string;
  /** `SHA256:...` as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/** Generates a real key pair with ssh-keygen in a temporary directory, which is removed again. */
export function generateKey(type: 'ed25519' | 'rsa' | 'dsa' | 'ecdsa', options: { bits?: number; comment?: string } = {}): GeneratedKey {
  const dir = mkdtempSync(join(tmpdir(), 'cw-key-'));
  try {
    const file = join(dir, 'key');
    const args = ['-q', '-t', type, '-N', '', '-f', file, '-C', options.comment ?? `test-${type}@example`];
    if (options.bits) args.push('-b', String(options.bits));
    execFileSync('ssh-keygen', args, { stdio: 'pipe' });
    const listed = execFileSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' });
    return {
      publicLine: readFileSync(`${file}.pub`, 'utf8').trim(),
      privateText: readFileSync(file, 'utf8'),
      fingerprint: listed.split(' ')[1]!,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A fresh temporary directory and a function that removes it. */
export function tempDir(prefix = 'cw-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

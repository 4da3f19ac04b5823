import { writeFileAtomicSync } from '../../lib/atomic-write.js';
import type { Admin } from '../db/store.js';
import { ensurePrivateDir, type StoragePaths } from '../../lib/storage-layout.js';
import { writeFileAtomic } from '../../lib/atomic-write.js';

/** The authorized_keys text for sshd: per admin a `# cw admin NAME` line, then its normalized key line. */
export function renderAuthorizedKeys(admins: readonly Admin[]): string {
  return admins.map((a) => `# cw admin ${a.name}\n${a.keyLine}\n`).join('');
}

/** Replaces `admins/authorized_keys` (0600) atomically with the keys of `admins`. */
export function writeAuthorizedKeys(paths: StoragePaths, admins: readonly Admin[]): void {
  ensurePrivateDir(paths.adminsDir);
  writeFileAtomicSync(paths.authorizedKeysFile, renderAuthorizedKeys(admins), { mode: 0o600 });
}

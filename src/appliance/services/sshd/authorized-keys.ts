import { writeFileAtomicSync } from '../../../lib/atomic-write.js';
import type { Admin, Store } from '../../db/store.js';
import { ensurePrivateDir, type StoragePaths } from '../../../lib/storage-layout.js';
import { writeFileAtomic } from '../../../lib/atomic-write.js';

/** The authorized_keys text for sshd: per admin a `# cw admin NAME` line, then its normalized key line. */
export function renderAuthorizedKeys(admins: readonly Admin[]): string {
  return admins.map((a) => `# cw admin ${a.name}\n${a.keyLine}\n`).join('');
}

/** Replaces `admins/authorized_keys` (0600) atomically with the keys of `admins`. */
export function writeAuthorizedKeys(paths: StoragePaths, admins: readonly Admin[]): void {
  ensurePrivateDir(paths.adminsDir);
  writeFileAtomicSync(paths.authorizedKeysFile, renderAuthorizedKeys(admins), { mode: 0o600 });
}

/**
 * Removes admin `name` and re-renders authorized_keys in one transaction (the file is written before the
 * commit: if writing fails the admin stays). Resolves with the removed admin, or undefined when there was
 * none of that name (nothing is written then).
 */
export async function removeAdminAndKey(store: Store, paths: StoragePaths, name: string): Promise<Admin | undefined> {
  return store.transaction(async (tx) => {
    const admin = await tx.getAdmin(name);
    if (!admin) return undefined;
    await tx.removeAdmin(name);
    writeAuthorizedKeys(paths, await tx.listAdmins());
    return admin;
  });
}

import { ExitError, errorMessage } from '../../../lib/errors.js';
import { parsePublicKey, type PublicKeyInfo } from '../../../lib/sshkey.js';
import { validateAdminName } from '../../db/model.js';
import { writeAuthorizedKeys } from '../../services/sshd/authorized-keys.js';
import { withStore, type CommandContext } from '../context.js';

export interface AdminAddOptions {
  name: string;
  /** One OpenSSH public key line. */
  key: string;
  /** Replace the key of an existing admin of that name. */
  replace?: boolean;
}

/** Validates and stores an admin, then re-renders authorized_keys; both or neither happen. */
export async function adminAdd(ctx: CommandContext, options: AdminAddOptions): Promise<void> {
  validateAdminName(options.name);
  let key: PublicKeyInfo;
  try {
    key = parsePublicKey(options.key);
  } catch (err) {
    throw new ExitError(`invalid ssh public key: ${errorMessage(err)}`);
  }
  await withStore(ctx, (store) =>
    store.transaction(async (tx) => {
      await tx.addAdmin(
        { name: options.name, keyType: key.type, keyLine: key.line, fingerprint: key.fingerprint, comment: key.comment },
        { replace: options.replace },
      );
      // Written before the commit: if writing fails the admin is not added either.
      writeAuthorizedKeys(ctx.paths, await tx.listAdmins());
    }),
  );
  ctx.out(`Added admin ${options.name} (${key.type} ${key.fingerprint})`);
}

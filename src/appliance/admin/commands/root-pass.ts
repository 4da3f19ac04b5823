import { ExitError } from '../../../lib/errors.js';
import { isPasswordHash } from '../../../lib/password.js';
import { ensureSecrets } from '../../storage.js';
import { withStore, type CommandContext } from '../context.js';

/**
 * Stores the root password hash given in env `CW_ROOT_HASH` (hashed on the host, so the clear password
 * never enters the container). The database password file is made here too (for the monitoring login
 * to come) but never printed: it protects nothing yet, and a printed secret ends up in terminals and logs.
 */
export async function rootPass(ctx: CommandContext): Promise<void> {
  const hash = ctx.env.CW_ROOT_HASH ?? '';
  // The value is never echoed: if it is not a hash, it may well be the clear password.
  if (hash.length === 0) throw new ExitError('CW_ROOT_HASH is empty; pass the password hash computed on the host');
  if (!isPasswordHash(hash)) {
    throw new ExitError('CW_ROOT_HASH is not a password hash ($scrypt$ln=16,r=8,p=1$SALT$HASH); hash the password on the host');
  }
  ensureSecrets(ctx.paths);
  await withStore(ctx, (store) => store.setSetting('root_password_hash', hash));
  ctx.out('Root password set');
}

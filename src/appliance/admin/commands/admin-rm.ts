import { ExitError } from '../../../lib/errors.js';
import { validateAdminName } from '../../db/model.js';
import { removeAdminAndKey } from '../../services/sshd/authorized-keys.js';
import { withStore, type CommandContext } from '../context.js';

/**
 * Removes an admin and its authorized_keys line; its API tokens stop working at once (the API checks
 * the store on every request). An unknown name is an error.
 */
export async function adminRm(ctx: CommandContext, name: string): Promise<void> {
  validateAdminName(name);
  const removed = await withStore(ctx, (store) => removeAdminAndKey(store, ctx.paths, name));
  if (!removed) throw new ExitError(`no such admin: ${name} (cw-appliance admin-ls lists them)`);
  ctx.out(`Removed admin ${name} (${removed.keyType} ${removed.fingerprint})`);
}

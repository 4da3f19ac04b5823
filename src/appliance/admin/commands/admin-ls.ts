import { withStore, type CommandContext } from '../context.js';

/** One admin as printed by `cw-appliance admin-ls`. */
export interface AdminListing {
  name: string;
  keyType: string;
  fingerprint: string;
  comment: string;
  addedAt: string;
}

/** Prints the admins as a JSON array. */
export async function adminLs(ctx: CommandContext): Promise<void> {
  const admins = await withStore(ctx, (store) => store.listAdmins());
  const listing: AdminListing[] = admins.map(({ name, keyType, fingerprint, comment, addedAt }) => ({
    name,
    keyType,
    fingerprint,
    comment,
    addedAt,
  }));
  ctx.out(JSON.stringify(listing, null, 2));
}

import { withStore, type CommandContext } from '../context.js';

/** Prints `{set, scheme}`; never the hash itself. */
export async function rootStatus(ctx: CommandContext): Promise<void> {
  const hash = await withStore(ctx, (store) => store.getSetting('root_password_hash'));
  ctx.out(JSON.stringify({ set: hash !== undefined, scheme: 'scrypt' }));
}

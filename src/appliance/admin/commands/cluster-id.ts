import { ExitError } from '../../../lib/errors.js';
import { validateClusterId } from '../../db/model.js';
import { withStore, type CommandContext } from '../context.js';

/** With a token: validates and stores it. Without: prints the current cluster id. */
export async function clusterId(ctx: CommandContext, token: string | undefined): Promise<void> {
  if (token === undefined) {
    const current = await withStore(ctx, (store) => store.getSetting('cluster_id'));
    if (current === undefined) throw new ExitError('no cluster id set');
    ctx.out(current);
    return;
  }
  validateClusterId(token);
  await withStore(ctx, (store) => store.setSetting('cluster_id', token));
  ctx.out('Cluster ID set');
}

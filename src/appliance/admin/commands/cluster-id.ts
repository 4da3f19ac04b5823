import { ExitError } from '../../../lib/errors.js';
import { validateClusterId } from '../../db/model.js';
import { withStore, type CommandContext } from '../context.js';

/** The environment variable `cw-containerctl cluster-id` passes the token in (an exec's argv is public). */
export const CLUSTER_ID_ENV = 'CW_CLUSTER_ID';

/**
 * With a token (env `CW_CLUSTER_ID`, or the TOKEN argument kept for use inside the container): validates
 * and stores it. Without: prints the current cluster id.
 */
export async function clusterId(ctx: CommandContext, argument: string | undefined): Promise<void> {
  const fromEnv = ctx.env[CLUSTER_ID_ENV];
  if (fromEnv !== undefined && argument !== undefined) {
    throw new ExitError(`give the cluster id either in ${CLUSTER_ID_ENV} or as TOKEN, not both`);
  }
  if (fromEnv === '') throw new ExitError(`${CLUSTER_ID_ENV} is empty, nothing changed`);
  const token = fromEnv ?? argument;
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

import { ExitError } from '../../../lib/errors.js';
import { findRunningAppliance, runAppliance } from '../appliance.js';
import type { CommandContext } from '../context.js';
import { withNewline } from '../format.js';

export interface ClusterIdOptions {
  /** The cluster authentication token; without it the current one is printed. */
  token?: string | undefined;
  name?: string | undefined;
}

/** `cw-containerctl cluster-id [TOKEN]`: sets (or shows) the cluster's authentication token. */
export async function clusterId(options: ClusterIdOptions, ctx: CommandContext): Promise<void> {
  const token = options.token?.trim();
  if (options.token !== undefined && !token) throw new ExitError('empty cluster id, nothing changed');
  const engine = await ctx.engine();
  const container = await findRunningAppliance(engine, options.name);
  const result = await runAppliance(engine, container, token ? ['cluster-id', token] : ['cluster-id']);
  ctx.stdout.write(withNewline(result.stdout));
}

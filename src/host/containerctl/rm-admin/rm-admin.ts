import { ExitError } from '../../../lib/errors.js';
import { isValidAdminName } from '../../../lib/validate.js';
import { findRunningAppliance, runAppliance } from '../appliance.js';
import type { CommandContext } from '../context.js';
import { withNewline } from '../format.js';

export interface RmAdminOptions {
  /** Admin user name (`isValidAdminName`). */
  admin: string;
  name?: string | undefined;
}

/**
 * `cw-containerctl rm-admin NAME`: removes an admin; its ssh key and API tokens stop working at once.
 * The name is checked on the host; nothing is sent to the container when it is not a valid one.
 */
export async function rmAdmin(options: RmAdminOptions, ctx: CommandContext): Promise<void> {
  const check = isValidAdminName(options.admin);
  if (check !== true) throw new ExitError(`invalid admin name "${options.admin}": ${check}`);
  const engine = await ctx.engine();
  const container = await findRunningAppliance(engine, options.name);
  const result = await runAppliance(engine, container, ['admin-rm', options.admin]);
  ctx.stdout.write(withNewline(result.stdout));
}

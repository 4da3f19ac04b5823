import { ExitError, errorMessage } from '../../../lib/errors.js';
import type { SupervisorHealthReport } from '../../api/supervisor-client.js';
import type { CommandContext } from '../context.js';

/** Prints the supervisor's health JSON; fails unless the appliance is healthy (the HEALTHCHECK asks the same socket with curl). */
export async function health(ctx: CommandContext): Promise<void> {
  let report: SupervisorHealthReport;
  try {
    report = await ctx.supervisorHealth();
  } catch (err) {
    ctx.out(JSON.stringify({ status: 'unknown', services: {} }, null, 2));
    throw new ExitError(errorMessage(err));
  }
  ctx.out(JSON.stringify(report, null, 2));
  if (report.status !== 'healthy') {
    const failing = Object.entries(report.services)
      .filter(([, s]) => !['ready', 'running'].includes(s.state.toLowerCase()))
      .map(([name, s]) => `${name} ${s.state}`);
    throw new ExitError(`appliance is ${report.status}${failing.length ? ` (${failing.join(', ')})` : ''}`);
  }
}

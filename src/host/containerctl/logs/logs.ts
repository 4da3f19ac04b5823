import type { Writable } from 'node:stream';
import { ExitError } from '../../../lib/errors.js';
import { findAppliance } from '../appliance.js';
import type { CommandContext } from '../context.js';

export interface LogsOptions {
  follow?: boolean | undefined;
  /** Lines from the end. */
  tail?: number | undefined;
  name?: string | undefined;
}

export interface LogsDeps {
  stdout?: Writable;
  stderr?: Writable;
}

/** `cw-containerctl logs [-f] [--tail N]`: the container's log (every daemon's prefixed lines). */
export async function logs(options: LogsOptions, ctx: CommandContext, deps: LogsDeps = {}): Promise<void> {
  if (options.tail !== undefined && (!Number.isInteger(options.tail) || options.tail < 0)) {
    throw new ExitError(`--tail must be a number of lines, not "${options.tail}"`);
  }
  const engine = await ctx.engine();
  const container = await findAppliance(engine, options.name);
  await engine.streamLogs(
    container.id,
    { follow: Boolean(options.follow), tail: options.tail },
    deps.stdout ?? process.stdout,
    deps.stderr ?? process.stderr,
  );
}

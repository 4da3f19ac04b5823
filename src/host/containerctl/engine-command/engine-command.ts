import type { CommandContext } from '../context.js';
import { describeEngine } from '../engine/identify.js';

export interface EngineCommandOptions {
  /** Print only `docker` or `podman` (what the scripts read). */
  kind?: boolean | undefined;
}

/**
 * `cw-containerctl engine`: the engine every command would use, so the scripts (image build, quick
 * start) build and load into the same engine that `start` runs in.
 */
export async function engineCommand(options: EngineCommandOptions, ctx: CommandContext): Promise<void> {
  const engine = await ctx.engine();
  ctx.stdout.write(options.kind ? `${engine.identity.kind}\n` : `${describeEngine(engine.identity)}\n`);
}

import { setTimeout as sleep } from 'node:timers/promises';
import { connectEngine, otherEngines } from './engine/connect.js';
import { wantedEngineKind } from './engine/endpoint.js';
import type { Engine } from './engine/engine.js';

/** A text sink; `isTTY` decides between progress bars and plain lines. */
export interface Output {
  write(text: string): unknown;
  isTTY?: boolean | undefined;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** What every command receives besides its options; tests pass fakes. */
export interface CommandContext {
  /** Connects lazily, so input errors are reported before any engine is needed. */
  engine: () => Promise<Engine>;
  /** The host's other engine(s), asked only to explain a missing image; none when not given. */
  otherEngines?: () => Promise<Engine[]>;
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
  clock: Clock;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => sleep(ms),
};

/**
 * The real process: engine found by the strategy list (limited to `--engine`, read when first needed,
 * or CW_ENGINE), process streams and environment.
 */
export function processContext(engineOption: () => string | undefined = () => undefined): CommandContext {
  let engine: Promise<Engine> | undefined;
  const connect = () => (engine ??= connectEngine({ env: process.env, kind: wantedEngineKind(engineOption(), process.env) }));
  return {
    engine: connect,
    otherEngines: async () => otherEngines(await connect(), { env: process.env }),
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    clock: systemClock,
  };
}

import { setTimeout as sleep } from 'node:timers/promises';
import { connectEngine } from './engine/connect.js';
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
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
  clock: Clock;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => sleep(ms),
};

/** The real process: engine found by the strategy list, process streams and environment. */
export function processContext(): CommandContext {
  let engine: Promise<Engine> | undefined;
  return {
    engine: () => (engine ??= connectEngine({ env: process.env })),
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    clock: systemClock,
  };
}

// One node's console logger: keeps an `ipmitool ... sol activate` running (stdin open, never written),
// stamps and appends what the serial port sends, and reconnects with exponential backoff and jitter when
// the BMC refuses or the session drops. It says what happens once per change of state, never per attempt,
// so a BMC that refuses for a week costs one log line and one attempt every few minutes.
import { errorMessage } from '../../lib/errors.js';
import type { CommandRunner } from '../power/command.js';
import { describeTarget, type IpmiTarget } from '../power/uri.js';
import { restartDelay } from '../supervisor/backoff.js';
import { LineSplitter } from '../supervisor/lines.js';
import { realClock } from '../supervisor/spawner.js';
import type { Clock, RestartPolicy, TimerHandle } from '../supervisor/types.js';
import { stampLine, type ConsoleLog } from './log-file.js';
import { isIpmitoolBanner, isIpmitoolNoise, isSolBusy, solCommand, solLogCommand } from './sol.js';
import type { Command } from '../power/command.js';

/** A running `sol activate`. */
export interface SolProcess {
  /** Bytes the serial port sent (ipmitool's stdout). */
  onData(listener: (chunk: Buffer) => void): void;
  /** Called once when it ended, with what it wrote to stderr. */
  onExit(listener: (code: number | null, stderr: string) => void): void;
  kill(): void;
}

/** Starts a long-running command with stdin kept open and never written. */
export type SolSpawner = (command: Command) => SolProcess;

export type BackoffPolicy = Pick<RestartPolicy, 'initialDelayMs' | 'maxDelayMs' | 'factor' | 'jitter'>;

/** 1 s, 2 s, 4 s ... up to 5 min, ±20 %. */
export const CONSOLE_BACKOFF: BackoffPolicy = { initialDelayMs: 1000, factor: 2, maxDelayMs: 300_000, jitter: 0.2 };
/** A session that lasted this long counts as good: the next failure starts the backoff from the beginning. */
export const STABLE_MS = 60_000;
/** A session alive this long is reported as connected. */
export const CONNECTED_MS = 3000;
/** How often a worker held by an interactive session looks whether it was released. */
export const HELD_POLL_MS = 1000;

export type WorkerState = 'connecting' | 'connected' | 'backoff' | 'held' | 'stopped';

export interface ConsoleWorkerOptions {
  node: string;
  target: IpmiTarget;
  log: ConsoleLog;
  spawn: SolSpawner;
  /** Runs `sol deactivate` (default execa, through the power runner). */
  run: CommandRunner;
  /** The appliance's own log (`[api] console n0: ...`). */
  say?: (line: string) => void;
  /** Whether an interactive session holds the console now (`cw-appliance console`). */
  held?: () => boolean;
  clock?: Clock;
  random?: () => number;
  policy?: BackoffPolicy;
}

export class ConsoleWorker {
  readonly node: string;
  readonly target: IpmiTarget;
  #state: WorkerState = 'stopped';
  /** What was last said, so that a repeated failure is not said again. */
  #said = '';
  #attempt = 0;
  #proc: SolProcess | undefined;
  #timer: TimerHandle | undefined;
  #connectedTimer: TimerHandle | undefined;
  #watchTimer: TimerHandle | undefined;
  #startedAt = 0;
  #triedDeactivate = false;
  readonly #o: Required<Omit<ConsoleWorkerOptions, 'say' | 'held'>> & Pick<ConsoleWorkerOptions, 'say' | 'held'>;

  constructor(options: ConsoleWorkerOptions) {
    this.node = options.node;
    this.target = options.target;
    this.#o = { clock: realClock, random: Math.random, policy: CONSOLE_BACKOFF, ...options };
  }

  get state(): WorkerState {
    return this.#state;
  }

  /** The delay before the next attempt after `attempt` failures in a row (exposed for tests and docs). */
  delayFor(attempt: number): number {
    return restartDelay(this.#o.policy, attempt, this.#o.random);
  }

  start(): void {
    if (this.#state !== 'stopped') return;
    this.#connect();
  }

  /** Ends the session and the log; the worker can be started again. */
  async stop(): Promise<void> {
    this.#state = 'stopped';
    this.#clearTimers();
    const proc = this.#proc;
    this.#proc = undefined;
    if (proc) {
      proc.kill();
      // A killed ipmitool leaves its session open on the BMC: end it, so that the next client (an
      // admin's interactive console, this worker started again) finds the console free.
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 5000);
      void this.#o
        .run(solCommand(this.target, 'deactivate'), controller.signal)
        .catch(() => undefined)
        .finally(() => clearTimeout(timer));
    }
    await this.#o.log.close();
  }

  #say(key: string, line: string): void {
    if (this.#said === key) return;
    this.#said = key;
    this.#o.say?.(`console ${this.node}: ${line}`);
  }

  #clearTimers(): void {
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    if (this.#connectedTimer) this.#o.clock.clearTimeout(this.#connectedTimer);
    if (this.#watchTimer) this.#o.clock.clearTimeout(this.#watchTimer);
    this.#timer = undefined;
    this.#connectedTimer = undefined;
    this.#watchTimer = undefined;
  }

  /** While a session runs, looks every HELD_POLL_MS whether an interactive session wants the console, and gives it up. */
  #watchHold(proc: SolProcess): void {
    if (!this.#o.held) return;
    this.#watchTimer = this.#o.clock.setTimeout(() => {
      this.#watchTimer = undefined;
      if (this.#proc !== proc) return;
      if (this.#o.held?.()) proc.kill();
      else this.#watchHold(proc);
    }, HELD_POLL_MS);
  }

  #later(ms: number, fn: () => void): void {
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      fn();
    }, ms);
  }

  #connect(): void {
    if (this.#o.held?.()) {
      this.#state = 'held';
      this.#say('held', 'an interactive session holds the console; logging resumes when it ends');
      this.#later(HELD_POLL_MS, () => this.#connect());
      return;
    }
    if (this.#state === 'held') this.#attempt = 0;
    this.#state = 'connecting';
    const clock = this.#o.clock;
    const splitter = new LineSplitter((line) => {
      if (isIpmitoolBanner(line)) return;
      this.#o.log.append([stampLine(new Date(clock.now()), line)]).catch((err: unknown) => this.#say('write-error', `cannot write the log: ${errorMessage(err)}`));
    });
    let proc: SolProcess;
    try {
      proc = this.#o.spawn(solLogCommand(this.target));
    } catch (err) {
      this.#failed(`cannot start ipmitool: ${errorMessage(err)}`, 'spawn');
      return;
    }
    this.#proc = proc;
    this.#startedAt = clock.now();
    proc.onData((chunk) => splitter.push(chunk));
    this.#watchHold(proc);
    this.#connectedTimer = clock.setTimeout(() => {
      this.#connectedTimer = undefined;
      if (this.#proc !== proc) return;
      this.#state = 'connected';
      this.#triedDeactivate = false;
      this.#say('connected', `logging the serial console of ${describeTarget(this.target)}`);
    }, CONNECTED_MS);
    proc.onExit((code, stderr) => {
      splitter.end();
      if (this.#proc !== proc) return;
      this.#proc = undefined;
      if (this.#connectedTimer) clock.clearTimeout(this.#connectedTimer);
      if (this.#watchTimer) clock.clearTimeout(this.#watchTimer);
      this.#connectedTimer = undefined;
      this.#watchTimer = undefined;
      if (this.#state === 'stopped') return;
      if (clock.now() - this.#startedAt >= STABLE_MS) this.#attempt = 0;
      if (isSolBusy(stderr) && !this.#triedDeactivate) {
        this.#triedDeactivate = true;
        this.#deactivateThenConnect();
        return;
      }
      const reason = firstLine(stderr) ?? (code === 0 ? 'the session ended' : `ipmitool exited with status ${code ?? 'signal'}`);
      this.#failed(reason, isSolBusy(stderr) ? 'busy' : code === 0 ? 'ended' : reason);
    });
  }

  /** A stale session blocks activation: `sol deactivate`, then try again at once (once per failure run). */
  #deactivateThenConnect(): void {
    this.#say('deactivate', `a stale SOL session blocks ${describeTarget(this.target)}: deactivating it`);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 15_000);
    this.#o
      .run(solCommand(this.target, 'deactivate'), controller.signal)
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(timer);
        if (this.#state !== 'stopped') this.#connect();
      });
  }

  #failed(reason: string, key: string): void {
    if (this.#o.held?.()) {
      this.#connect();
      return;
    }
    const delay = this.delayFor(this.#attempt++);
    this.#state = 'backoff';
    const cap = Math.round(this.#o.policy.maxDelayMs / 1000);
    this.#say(`fail:${key}`, `${describeTarget(this.target)}: ${reason}; reconnecting with backoff (at most every ${cap} s)`);
    this.#later(delay, () => this.#connect());
  }
}

function firstLine(text: string): string | undefined {
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[\p{C}]/gu, '').trim();
    if (line !== '' && !isIpmitoolNoise(line)) return (line.length > 200 ? `${line.slice(0, 197)}...` : line).replace(/^Error:\s*/, '');
  }
  return undefined;
}

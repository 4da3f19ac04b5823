// The console log workers of the appliance: one per node whose `_console_log` attribute is yes (its own,
// else from its groups, else DefaultAttribs) and whose power_uri is a local ipmi one. `reconcile` is
// called with what the database says now; workers start, stop, or restart on a changed power_uri,
// without restarting anything else.
import { spawn } from 'node:child_process';
import type { Store } from '../db/store.js';
import type { CommandRunner } from '../power/command.js';
import { parsePowerTarget, type IpmiTarget } from '../power/uri.js';
import type { Clock } from '../supervisor/types.js';
import { holderOf } from './hold.js';
import { ConsoleLog, consoleLogFile, type ConsoleLogOptions } from './log-file.js';
import { ConsoleWorker, type BackoffPolicy, type SolProcess, type SolSpawner, type WorkerState } from './worker.js';

/** The attribute that turns a node's console log on. */
export const CONSOLE_LOG_ATTRIBUTE = '_console_log';

/** `yes`, `true`, `on`, `1` (any case). */
export function isYes(value: string | undefined): boolean {
  return /^(yes|true|on|1)$/i.test(value?.trim() ?? '');
}

/** A node whose console is to be logged. */
export interface WantedConsole {
  node: string;
  target: IpmiTarget;
  /** The power_uri text, to notice a change. */
  uri: string;
}

/**
 * The nodes whose consoles are to be logged now, and why others that asked for it cannot be.
 * Example: n0 with `_console_log=yes` from DefaultAttribs and `power_uri=ipmi:///admin:pw@10.1.15.1`
 * -> `{ wanted: [{ node: 'n0', target: {...}, uri }], skipped: [] }`.
 */
export async function wantedConsoles(store: Store): Promise<{ wanted: WantedConsole[]; skipped: Array<{ node: string; reason: string }> }> {
  const wanted: WantedConsole[] = [];
  const skipped: Array<{ node: string; reason: string }> = [];
  for (const node of await store.listNodes()) {
    const attributes = await store.resolveAttributes(node);
    if (!isYes(attributes[CONSOLE_LOG_ATTRIBUTE]?.value)) continue;
    const uri = node.power_uri || attributes._power_uri?.value || null;
    if (!uri) {
      skipped.push({ node: node.name, reason: 'no power_uri' });
      continue;
    }
    let target;
    try {
      target = parsePowerTarget(uri).target;
    } catch {
      skipped.push({ node: node.name, reason: 'its power_uri cannot be used' });
      continue;
    }
    if (target.scheme !== 'ipmi' || target.relay) {
      skipped.push({ node: node.name, reason: 'console logs need an ipmi:/// power_uri (no relay)' });
      continue;
    }
    wanted.push({ node: node.name, target, uri });
  }
  return { wanted, skipped };
}

/** Starts `sol activate` with stdin a pipe that is kept open and never written (EOF would end ipmitool). */
export const realSolSpawner: SolSpawner = (command) => {
  const child = spawn(command.file, command.args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...command.env } });
  let stderr = '';
  const exitListeners: Array<(code: number | null, stderr: string) => void> = [];
  let exited: [number | null, string] | undefined;
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 64 * 1024) stderr += chunk.toString('utf8');
  });
  child.stdin.on('error', () => undefined);
  const finish = (code: number | null) => {
    if (exited) return;
    exited = [code, stderr];
    for (const l of exitListeners) l(code, stderr);
  };
  child.on('error', (err) => {
    stderr += (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${command.file} is not installed on the head node` : err.message;
    finish(null);
  });
  child.on('close', (code) => finish(code));
  const proc: SolProcess = {
    onData: (listener) => child.stdout.on('data', listener),
    onExit: (listener) => {
      if (exited) listener(...exited);
      else exitListeners.push(listener);
    },
    kill: () => {
      if (exited) return;
      child.kill('SIGTERM');
      setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, 2000).unref();
    },
  };
  return proc;
};

export interface ConsoleManagerOptions {
  /** `STORAGE/logs/consoles`. */
  dir: string;
  /** Where interactive sessions leave their hold files (`/run/cw/consoles`). */
  holdDir: string;
  run: CommandRunner;
  spawn?: SolSpawner;
  say?: (line: string) => void;
  clock?: Clock;
  random?: () => number;
  policy?: BackoffPolicy;
  logOptions?: ConsoleLogOptions;
}

export class ConsoleManager {
  readonly #workers = new Map<string, { worker: ConsoleWorker; uri: string }>();
  readonly #o: ConsoleManagerOptions;

  constructor(options: ConsoleManagerOptions) {
    this.#o = options;
  }

  /** Each logged node and its worker's state. */
  states(): Record<string, WorkerState> {
    return Object.fromEntries([...this.#workers].map(([node, { worker }]) => [node, worker.state]));
  }

  /** Makes the running workers match `wanted`. */
  async reconcile(wanted: readonly WantedConsole[]): Promise<void> {
    const next = new Map(wanted.map((w) => [w.node, w]));
    const stops: Promise<void>[] = [];
    for (const [node, { worker, uri }] of this.#workers) {
      const w = next.get(node);
      if (w && w.uri === uri) continue;
      this.#workers.delete(node);
      if (!w) this.#o.say?.(`console ${node}: no longer logged`);
      stops.push(worker.stop());
    }
    await Promise.all(stops);
    for (const w of wanted) {
      if (this.#workers.has(w.node)) continue;
      const o = this.#o;
      const worker = new ConsoleWorker({
        node: w.node,
        target: w.target,
        log: new ConsoleLog(consoleLogFile(o.dir, w.node), o.logOptions),
        spawn: o.spawn ?? realSolSpawner,
        run: o.run,
        held: () => holderOf(o.holdDir, w.node) !== undefined,
        ...(o.say ? { say: o.say } : {}),
        ...(o.clock ? { clock: o.clock } : {}),
        ...(o.random ? { random: o.random } : {}),
        ...(o.policy ? { policy: o.policy } : {}),
      });
      this.#workers.set(w.node, { worker, uri: w.uri });
      worker.start();
    }
  }

  async stopAll(): Promise<void> {
    await this.reconcile([]);
  }
}

/**
 * Follows the database: reconciles now and every `intervalMs` (attribute groups and DefaultAttribs
 * change without touching the node), and at once when `trigger` is called. Returns stop().
 */
export function followDatabase(store: Store, manager: ConsoleManager, options: { intervalMs?: number; say?: (line: string) => void } = {}): { trigger: () => void; stop: () => Promise<void> } {
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  const lastSkipped = new Map<string, string>();
  const pass = async (): Promise<void> => {
    do {
      again = false;
      try {
        const { wanted, skipped } = await wantedConsoles(store);
        if (stopped) return;
        await manager.reconcile(wanted);
        for (const { node, reason } of skipped) {
          if (lastSkipped.get(node) !== reason) options.say?.(`console ${node}: not logged: ${reason}`);
        }
        lastSkipped.clear();
        for (const { node, reason } of skipped) lastSkipped.set(node, reason);
      } catch (err) {
        options.say?.(`console logs: cannot read the nodes: ${err instanceof Error ? err.message : String(err)}`);
      }
    } while (again && !stopped);
  };
  const trigger = (): void => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = pass().finally(() => {
      running = undefined;
    });
  };
  const timer = setInterval(trigger, options.intervalMs ?? 5000);
  timer.unref();
  trigger();
  return {
    trigger,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      await manager.stopAll();
    },
  };
}

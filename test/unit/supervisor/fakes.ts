import type {
  ChildHandle,
  ChildServiceSpec,
  Clock,
  ExitInfo,
  LogSink,
  OutputStream,
  RestartPolicy,
  SpawnRequest,
  Spawner,
  TimerHandle,
} from '../../../src/appliance/supervisor/types.js';

/** Lets pending promise callbacks (probes, prepare) run. */
export async function flush(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  handle: TimerHandle;
}

/** A clock that only moves when told to, firing due timers in order. */
export class FakeClock implements Clock {
  private t = 1_000_000;
  private seq = 0;
  private timers: Timer[] = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = { id: ++this.seq };
    this.timers.push({ at: this.t + Math.max(0, ms), seq: this.seq, fn, handle });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.handle !== handle);
  }

  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due (and flushing promises after each). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await flush();
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.t = due.at;
      due.fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

export interface FakeBehaviour {
  /** Exit when this signal reaches the group (default: SIGTERM and SIGKILL). */
  exitsOn?: readonly NodeJS.Signals[];
}

export class FakeChild implements ChildHandle {
  readonly signals: Array<{ signal: NodeJS.Signals; target: 'group' | 'main'; at: number }> = [];
  exited: ExitInfo | null = null;
  readonly spawnedAt: number;
  exitedAt: number | null = null;
  private callback: ((exit: ExitInfo) => void) | null = null;

  constructor(
    readonly pid: number,
    readonly request: SpawnRequest,
    private readonly clock: Clock,
    private readonly behaviour: FakeBehaviour,
  ) {
    this.spawnedAt = clock.now();
  }

  onExit(callback: (exit: ExitInfo) => void): void {
    this.callback = callback;
  }

  kill(signal: NodeJS.Signals, target: 'group' | 'main' = 'group'): void {
    this.signals.push({ signal, target, at: this.clock.now() });
    if (this.exited) return;
    const exitsOn = this.behaviour.exitsOn ?? ['SIGTERM', 'SIGKILL'];
    if (signal === 'SIGKILL' || exitsOn.includes(signal)) queueMicrotask(() => this.exit({ code: null, signal }));
  }

  /** The process ends by itself (crash, or `code` 0). */
  exit(info: ExitInfo = { code: 1, signal: null }): void {
    if (this.exited) return;
    this.exited = info;
    this.exitedAt = this.clock.now();
    this.callback?.(info);
  }

  print(line: string, stream: OutputStream = 'stdout'): void {
    this.request.onLine(line, stream);
  }
}

export class FakeSpawner implements Spawner {
  readonly children: FakeChild[] = [];
  readonly behaviour = new Map<string, FakeBehaviour>();
  private nextPid = 100;

  constructor(private readonly clock: Clock) {}

  spawn(request: SpawnRequest): ChildHandle {
    const child = new FakeChild(this.nextPid++, request, this.clock, this.behaviour.get(request.name) ?? {});
    this.children.push(child);
    return child;
  }

  of(name: string): FakeChild[] {
    return this.children.filter((c) => c.request.name === name);
  }

  last(name: string): FakeChild {
    const all = this.of(name);
    const child = all[all.length - 1];
    if (!child) throw new Error(`${name} was never spawned`);
    return child;
  }

  /** For each restart of `name`: time from the previous run's exit to the new spawn. */
  gaps(name: string): number[] {
    const runs = this.of(name);
    return runs.slice(1).map((run, i) => run.spawnedAt - (runs[i]?.exitedAt ?? Number.NaN));
  }
}

export class MemorySink implements LogSink {
  readonly lines: string[] = [];
  write(source: string, line: string): void {
    this.lines.push(`[${source}] ${line}`);
  }
  matching(re: RegExp): string[] {
    return this.lines.filter((l) => re.test(l));
  }
}

export const POLICY: RestartPolicy = {
  initialDelayMs: 200,
  maxDelayMs: 1600,
  factor: 2,
  jitter: 0,
  resetAfterMs: 10_000,
  maxFailures: 5,
  windowMs: 60_000,
};

/** A child service whose readiness is whatever `ready` says. */
export function childSpec(name: string, overrides: Partial<ChildServiceSpec> & { ready?: Set<string> } = {}): ChildServiceSpec {
  const { ready, ...rest } = overrides;
  return {
    kind: 'child',
    name,
    dependsOn: [],
    essential: true,
    command: () => ({ command: `/usr/sbin/${name}`, args: ['-f'] }),
    ...(ready ? { readiness: { probe: async () => ready.has(name), intervalMs: 100, timeoutMs: 5000 } } : {}),
    restart: POLICY,
    reload: { kind: 'restart' },
    stopDeadlineMs: 3000,
    ...rest,
  };
}

/** Waits (in real time, up to `ms`) for a condition that depends on real I/O, such as a prepare step writing files. */
export async function eventually(check: () => boolean, ms = 3000): Promise<boolean> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

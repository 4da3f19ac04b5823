/** Time source and timers; the real one wraps Date.now/setTimeout, tests inject a manual one. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Opaque timer token returned by `Clock.setTimeout`. */
export type TimerHandle = object;

export type OutputStream = 'stdout' | 'stderr';

export interface ExitInfo {
  /** Exit code, or null when killed by a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (e.g. `spawn /usr/sbin/dhcpd ENOENT`). */
  error?: string;
}

export interface SpawnRequest {
  name: string;
  command: string;
  args: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  /** Called once per complete output line (without its line ending). */
  onLine(line: string, stream: OutputStream): void;
}

/** A running child, leader of its own process group. */
export interface ChildHandle {
  /** Null when the process could not be started; onExit then fires with `error`. */
  readonly pid: number | null;
  /** Registers the (single) exit callback; it fires exactly once. */
  onExit(callback: (exit: ExitInfo) => void): void;
  /** Sends a signal to the whole process group (`main`: to the leader only). Never throws. */
  kill(signal: NodeJS.Signals, target?: 'group' | 'main'): void;
}

export interface Spawner {
  spawn(request: SpawnRequest): ChildHandle;
}

export interface RestartPolicy {
  /** First restart delay after a crash. */
  initialDelayMs: number;
  /** Cap of the exponential delay. */
  maxDelayMs: number;
  /** Growth per consecutive failure. */
  factor: number;
  /** Relative randomisation of each delay, 0..1 (0.2 = ±20%). */
  jitter: number;
  /** A run that lasted at least this long resets the delay to `initialDelayMs`. */
  resetAfterMs: number;
  /** More failures than this within `windowMs` make the service FATAL. */
  maxFailures: number;
  windowMs: number;
}

export type ServiceState = 'stopped' | 'waiting' | 'starting' | 'ready' | 'backoff' | 'fatal' | 'stopping';

export interface CommandLine {
  command: string;
  args: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
}

/** What `prepare` returns when a precondition is not met yet (the service waits and is rechecked). */
export interface WaitFor {
  wait: string;
}

/** What `prepare` returns when the running daemon already has this configuration: a reload then leaves it alone. */
export interface Unchanged {
  unchanged: true;
}

export interface ReadinessContext {
  /** Pid of the service's main process. */
  pid: number;
}

export interface Readiness {
  /** Resolves true once the service answers; polled every `intervalMs` until `timeoutMs`. */
  probe(ctx: ReadinessContext): Promise<boolean>;
  intervalMs: number;
  timeoutMs: number;
}

/** How a running service takes a new configuration: a full restart, or a signal to its main process. */
export type ReloadAction = { kind: 'restart' } | { kind: 'signal'; signal: NodeJS.Signals };

interface ServiceSpecBase {
  name: string;
  dependsOn: readonly string[];
  /** FATAL of an essential service makes the appliance unhealthy. */
  essential: boolean;
}

/** A daemon run as a child process in the foreground. */
export interface ChildServiceSpec extends ServiceSpecBase {
  kind: 'child';
  /**
   * Runs before every start and on reload: render configuration, create files, check preconditions.
   * Returning `{wait}` parks the service in `waiting` (logged once) and rechecks after `waitRecheckMs`;
   * `{unchanged: true}` lets a reload leave the running daemon alone (a start goes ahead regardless).
   */
  prepare?: () => Promise<void | WaitFor | Unchanged>;
  command(): CommandLine | Promise<CommandLine>;
  readiness?: Readiness;
  restart: RestartPolicy;
  reload: ReloadAction;
  /** Signal that asks the daemon to exit (default SIGTERM). */
  stopSignal?: NodeJS.Signals;
  /** After this long the process group gets SIGKILL. */
  stopDeadlineMs: number;
  /** Recheck period for a `waiting` precondition (default 10 s). */
  waitRecheckMs?: number;
  /** Health detail while nothing else is to report, e.g. "new config rejected ...; serving the last good one". */
  statusDetail?: () => string | null;
}

/** A facility that lives inside the supervisor process (e.g. the syslog socket). */
export interface InternalServiceSpec extends ServiceSpecBase {
  kind: 'internal';
  start(): Promise<void>;
  stop(): Promise<void>;
}

export type ServiceSpec = ChildServiceSpec | InternalServiceSpec;

export interface LastExit {
  code: number | null;
  signal: string | null;
  /** ISO time of the exit. */
  at: string;
}

export interface ServiceHealth {
  state: ServiceState;
  pid: number | null;
  restarts: number;
  /** ISO time the service entered its current state. */
  since: string;
  lastExit: LastExit | null;
  essential: boolean;
  /** Why it is waiting, backing off or fatal; null otherwise. */
  detail: string | null;
}

export type HealthStatus = 'healthy' | 'unhealthy' | 'starting';

export interface HealthReport {
  status: HealthStatus;
  services: Record<string, ServiceHealth>;
}

/** Where the supervisor's and the children's lines go (stdout as `[name] line` and the log files). */
export interface LogSink {
  write(source: string, line: string): void;
}

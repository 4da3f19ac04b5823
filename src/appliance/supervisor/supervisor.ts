import { errorMessage } from '../../lib/errors.js';
import { restartDelay } from './backoff.js';
import type {
  ChildHandle,
  ChildServiceSpec,
  Clock,
  ExitInfo,
  HealthReport,
  HealthStatus,
  LastExit,
  LogSink,
  Readiness,
  ServiceHealth,
  ServiceSpec,
  ServiceState,
  Spawner,
  TimerHandle,
} from './types.js';

export interface SupervisorOptions {
  clock: Clock;
  spawner: Spawner;
  sink: LogSink;
  /** Source of jitter, [0, 1). */
  random?: () => number;
  /** How long to wait for a process group after SIGKILL before giving up on it. */
  killGraceMs?: number;
}

/** Thrown by `reload` for a name that is not in the service table. */
export class UnknownServiceError extends Error {
  constructor(name: string) {
    super(`unknown service "${name}"`);
    this.name = 'UnknownServiceError';
  }
}

const DEFAULT_WAIT_RECHECK_MS = 10_000;
const DEFAULT_KILL_GRACE_MS = 2_000;

interface Runtime {
  spec: ServiceSpec;
  state: ServiceState;
  since: number;
  detail: string | null;
  child: ChildHandle | null;
  /** Spawns after the first one. */
  restarts: number;
  spawned: boolean;
  startedAt: number;
  lastExit: LastExit | null;
  /** Times of recent failures, pruned to the restart window. */
  failures: number[];
  /** Consecutive-failure count feeding the backoff; reset after a long enough run. */
  attempt: number;
  timer: TimerHandle | null;
  /** Bumped whenever an in-flight start becomes obsolete (stop, reload, new start). */
  generation: number;
  launching: boolean;
  /** Set while the supervisor itself is stopping the process, so its exit is not a crash. */
  expectingExit: boolean;
  exitWaiters: Array<() => void>;
  blockedOnDependencies: boolean;
  /** Last precondition reported, so a waiting service logs once rather than every recheck. */
  waitReason: string | null;
  /** Last readiness-probe error logged, so a failing probe logs once per start, not every poll. */
  probeError: string | null;
  /** Serialises reloads of one service. */
  queue: Promise<unknown>;
  /** A reload queued behind the one in flight; later requests join it instead of queueing more. */
  pendingReload: Promise<ServiceHealth> | null;
}

/**
 * Runs a table of services: starts them in dependency order once their dependencies are ready,
 * restarts crashes with capped exponential backoff, gives up (FATAL) after too many failures in a
 * window, reloads on request and stops everything in reverse order.
 */
export class Supervisor {
  private readonly services = new Map<string, Runtime>();
  private readonly order: Runtime[];
  private readonly dependents = new Map<string, Runtime[]>();
  private readonly clock: Clock;
  private readonly spawner: Spawner;
  private readonly sink: LogSink;
  private readonly random: () => number;
  private readonly killGraceMs: number;
  private started = false;
  private stopping: Promise<void> | null = null;

  constructor(specs: readonly ServiceSpec[], options: SupervisorOptions) {
    this.clock = options.clock;
    this.spawner = options.spawner;
    this.sink = options.sink;
    this.random = options.random ?? Math.random;
    this.killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    const now = this.clock.now();
    for (const spec of specs) {
      if (this.services.has(spec.name)) throw new Error(`service "${spec.name}" is defined twice`);
      this.services.set(spec.name, {
        spec,
        state: 'stopped',
        since: now,
        detail: null,
        child: null,
        restarts: 0,
        spawned: false,
        startedAt: 0,
        lastExit: null,
        failures: [],
        attempt: 0,
        timer: null,
        generation: 0,
        launching: false,
        expectingExit: false,
        exitWaiters: [],
        blockedOnDependencies: false,
        waitReason: null,
        probeError: null,
        queue: Promise.resolve(),
        pendingReload: null,
      });
      this.dependents.set(spec.name, []);
    }
    for (const spec of specs) {
      for (const dep of spec.dependsOn) {
        if (!this.services.has(dep)) throw new Error(`service "${spec.name}" depends on unknown service "${dep}"`);
        this.dependents.get(dep)?.push(this.runtime(spec.name));
      }
    }
    this.order = dependencyOrder(specs).map((name) => this.runtime(name));
  }

  /** Names in start order (dependencies first). */
  get startOrder(): string[] {
    return this.order.map((svc) => svc.spec.name);
  }

  /** Starts every service as soon as its dependencies are ready; returns at once. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.log(`starting ${this.order.length} services: ${this.startOrder.join(', ')}`);
    this.schedule();
  }

  state(name: string): ServiceState {
    return this.runtime(name).state;
  }

  has(name: string): boolean {
    return this.services.has(name);
  }

  /** healthy: every essential service ready (or waiting on a precondition); unhealthy: one is FATAL. */
  health(): HealthReport {
    const services: Record<string, ServiceHealth> = {};
    let status: HealthStatus = 'healthy';
    for (const svc of this.order) {
      services[svc.spec.name] = this.serviceHealth(svc);
      if (!svc.spec.essential) continue;
      if (svc.state === 'fatal') status = 'unhealthy';
      else if (status === 'healthy' && svc.state !== 'ready' && svc.state !== 'waiting') status = 'starting';
    }
    if (this.stopping) status = 'unhealthy';
    return { status, services };
  }

  /**
   * Re-renders a service's configuration and applies it: a signal to the running daemon (nginx: SIGHUP)
   * or a restart (dhcpd). A FATAL service gets a fresh start; a waiting one is rechecked now.
   * A failing render leaves the running daemon untouched and rejects.
   *
   * Bursts coalesce: at most one reload runs and one waits. A request arriving while one waits joins
   * it, since that reload has not rendered yet and so will pick up the caller's change too. However many
   * node changes arrive while a dhcpd restart runs, they cost one more restart, not one each, and every
   * caller still gets its answer only after a reload that started after its request.
   */
  reload(name: string): Promise<ServiceHealth> {
    const svc = this.services.get(name);
    if (!svc) return Promise.reject(new UnknownServiceError(name));
    if (svc.pendingReload) return svc.pendingReload;
    const run = svc.queue.then(async () => {
      svc.pendingReload = null;
      await this.reloadNow(svc);
      return this.serviceHealth(svc);
    });
    svc.pendingReload = run;
    svc.queue = run.catch(() => undefined);
    return run;
  }

  /** Stops everything in reverse dependency order; resolves as soon as all processes are gone. */
  stopAll(): Promise<void> {
    if (!this.stopping) this.stopping = this.stopEverything();
    return this.stopping;
  }

  private async stopEverything(): Promise<void> {
    const began = this.clock.now();
    this.log('stopping all services');
    for (const svc of this.order) this.clearTimer(svc);
    const stops = new Map<string, Promise<void>>();
    const stopOne = (svc: Runtime): Promise<void> => {
      let promise = stops.get(svc.spec.name);
      if (!promise) {
        const after = (this.dependents.get(svc.spec.name) ?? []).map(stopOne);
        promise = Promise.all(after).then(() => this.stopService(svc));
        stops.set(svc.spec.name, promise);
      }
      return promise;
    };
    await Promise.all(this.order.map(stopOne));
    this.log(`all services stopped in ${seconds(this.clock.now() - began)}`);
  }

  private async stopService(svc: Runtime): Promise<void> {
    svc.generation += 1;
    svc.launching = false;
    this.clearTimer(svc);
    const spec = svc.spec;
    if (spec.kind === 'internal') {
      if (svc.state !== 'stopped') this.setState(svc, 'stopping', null);
      try {
        await spec.stop();
      } catch (err) {
        this.log(`${spec.name}: stop failed: ${errorMessage(err)}`);
      }
    } else if (svc.child) {
      await this.terminate(svc);
    }
    this.setState(svc, 'stopped', null);
  }

  private async reloadNow(svc: Runtime): Promise<void> {
    const spec = svc.spec;
    if (this.stopping) throw new Error('the supervisor is shutting down');
    if (spec.kind === 'internal') throw new Error(`${spec.name} cannot be reloaded`);
    this.log(`reloading ${spec.name} (${svc.state})`);
    switch (svc.state) {
      case 'fatal':
        this.log(`${spec.name}: fresh start after FATAL`);
        svc.failures = [];
        svc.attempt = 0;
        await this.launch(svc);
        return;
      case 'waiting':
        if (svc.blockedOnDependencies) return;
        await this.launch(svc);
        return;
      case 'stopped':
        if (!this.started) return;
        await this.launch(svc);
        return;
      case 'backoff':
        await this.launch(svc);
        return;
      case 'stopping':
        return;
      case 'starting':
      case 'ready':
        break;
    }
    if (svc.launching) return;
    // Render first: a broken template must not take down a daemon that is running fine.
    const outcome = await spec.prepare?.();
    if (this.stopping) return;
    if (outcome && 'wait' in outcome) {
      if (svc.child) await this.terminate(svc);
      svc.generation += 1;
      this.park(svc, outcome.wait);
      return;
    }
    if (outcome?.unchanged && svc.child) {
      this.log(`${spec.name}: configuration unchanged; not restarted`);
      return;
    }
    if (spec.reload.kind === 'signal' && svc.state === 'ready' && svc.child) {
      svc.child.kill(spec.reload.signal, 'main');
      this.log(`${spec.name}: sent ${spec.reload.signal}`);
      return;
    }
    if (svc.child) await this.terminate(svc);
    await this.launch(svc, { prepared: true });
  }

  private schedule(): void {
    if (!this.started || this.stopping) return;
    for (const svc of this.order) {
      if (svc.launching) continue;
      if (svc.state !== 'stopped' && !(svc.state === 'waiting' && svc.blockedOnDependencies)) continue;
      const deps = svc.spec.dependsOn.map((name) => this.runtime(name));
      const pending = deps.filter((d) => d.state !== 'ready' && d.state !== 'fatal');
      if (pending.length > 0) {
        const detail = `waiting for ${pending.map((d) => d.spec.name).join(', ')}`;
        svc.blockedOnDependencies = true;
        if (svc.state !== 'waiting' || svc.detail !== detail) this.setState(svc, 'waiting', detail);
        continue;
      }
      const fatal = deps.filter((d) => d.state === 'fatal').map((d) => d.spec.name);
      // A dead dependency will not come back by itself; the dependant still has work to do without it.
      if (fatal.length > 0) this.log(`starting ${svc.spec.name} although ${fatal.join(', ')} failed`);
      svc.blockedOnDependencies = false;
      void this.launch(svc);
    }
  }

  private async launch(svc: Runtime, opts: { prepared?: boolean } = {}): Promise<void> {
    if (this.stopping) return;
    const generation = ++svc.generation;
    const spec = svc.spec;
    const stale = (): boolean => generation !== svc.generation || this.stopping !== null;
    this.clearTimer(svc);
    svc.launching = true;
    // A recheck of a waiting precondition stays `waiting` until it really spawns (health stays OK).
    if (svc.state !== 'waiting' || svc.blockedOnDependencies) this.setState(svc, 'starting', null);
    svc.blockedOnDependencies = false;
    if (spec.kind === 'internal') {
      try {
        await spec.start();
      } catch (err) {
        if (stale()) return;
        svc.launching = false;
        this.setState(svc, 'fatal', errorMessage(err));
        this.log(`${spec.name} failed to start: ${errorMessage(err)} (FATAL)`);
        this.schedule();
        return;
      }
      if (stale()) return;
      svc.launching = false;
      this.setReady(svc);
      return;
    }
    let command;
    try {
      if (!opts.prepared) {
        const outcome = await spec.prepare?.();
        if (stale()) return;
        if (outcome && 'wait' in outcome) {
          svc.launching = false;
          this.park(svc, outcome.wait);
          return;
        }
      }
      command = await spec.command();
      if (stale()) return;
    } catch (err) {
      if (stale()) return;
      svc.launching = false;
      this.log(`${spec.name} cannot start: ${errorMessage(err)}`);
      this.onFailure(svc, 0);
      return;
    }
    svc.launching = false;
    if (svc.waitReason !== null) {
      this.sink.write(spec.name, `${svc.waitReason}: resolved; starting`);
      svc.waitReason = null;
    }
    this.spawn(svc, spec, command);
  }

  private spawn(svc: Runtime, spec: ChildServiceSpec, command: Awaited<ReturnType<ChildServiceSpec['command']>>): void {
    const generation = svc.generation;
    svc.expectingExit = false;
    const child = this.spawner.spawn({
      name: spec.name,
      command: command.command,
      args: command.args,
      env: command.env ?? {},
      ...(command.cwd !== undefined ? { cwd: command.cwd } : {}),
      onLine: (line) => this.sink.write(spec.name, line),
    });
    svc.child = child;
    svc.startedAt = this.clock.now();
    if (svc.spawned) svc.restarts += 1;
    svc.spawned = true;
    svc.probeError = null;
    this.setState(svc, 'starting', null);
    child.onExit((exit) => this.onExit(svc, child, exit));
    if (child.pid !== null) this.log(`${spec.name} started (pid ${child.pid}): ${[command.command, ...command.args].join(' ')}`);
    if (!spec.readiness) {
      if (svc.child === child) this.setReady(svc);
      return;
    }
    const deadline = this.clock.now() + spec.readiness.timeoutMs;
    this.pollReadiness(svc, generation, spec.readiness, deadline);
  }

  private pollReadiness(svc: Runtime, generation: number, readiness: Readiness, deadline: number): void {
    const child = svc.child;
    if (generation !== svc.generation || svc.state !== 'starting' || !child || child.pid === null) return;
    if (this.clock.now() >= deadline) {
      this.onReadinessTimeout(svc, generation, readiness);
      return;
    }
    const pid = child.pid;
    readiness
      .probe({ pid })
      .catch((err: unknown) => {
        // A probe that can tell why the service is not ready says so, once per start.
        const why = `${svc.spec.name} not ready: ${err instanceof Error ? err.message : String(err)}`;
        if (svc.probeError !== why) this.log(why);
        svc.probeError = why;
        return false;
      })
      .then((ok) => {
        if (generation !== svc.generation || svc.state !== 'starting' || svc.child !== child) return;
        if (ok) {
          this.setReady(svc);
          return;
        }
        svc.timer = this.clock.setTimeout(() => {
          svc.timer = null;
          this.pollReadiness(svc, generation, readiness, deadline);
        }, readiness.intervalMs);
      });
  }

  private onReadinessTimeout(svc: Runtime, generation: number, readiness: Readiness): void {
    const ranFor = this.clock.now() - svc.startedAt;
    this.log(`${svc.spec.name} not ready after ${seconds(readiness.timeoutMs)}; stopping it`);
    void this.terminate(svc).then(() => {
      if (generation !== svc.generation || this.stopping) return;
      this.onFailure(svc, ranFor);
    });
  }

  private setReady(svc: Runtime): void {
    this.clearTimer(svc);
    this.setState(svc, 'ready', null);
    const pid = svc.child?.pid;
    const took = svc.spec.kind === 'child' ? ` in ${seconds(this.clock.now() - svc.startedAt)}` : '';
    this.log(`${svc.spec.name} ready${pid ? ` (pid ${pid})` : ''}${took}`);
    this.schedule();
  }

  private onExit(svc: Runtime, child: ChildHandle, exit: ExitInfo): void {
    if (svc.child !== child) return;
    svc.child = null;
    // Whatever the leader left behind in its group (nginx workers, tftpd transfers) goes with it.
    child.kill('SIGKILL');
    const now = this.clock.now();
    svc.lastExit = { code: exit.code, signal: exit.signal, at: new Date(now).toISOString() };
    const waiters = svc.exitWaiters;
    svc.exitWaiters = [];
    for (const wake of waiters) wake();
    if (svc.expectingExit) return;
    const ranFor = now - svc.startedAt;
    this.log(`${svc.spec.name} ${describeExit(exit)} after ${seconds(ranFor)}`);
    this.onFailure(svc, ranFor);
  }

  private onFailure(svc: Runtime, ranForMs: number): void {
    const spec = svc.spec;
    if (spec.kind !== 'child' || this.stopping) return;
    const policy = spec.restart;
    const now = this.clock.now();
    if (ranForMs >= policy.resetAfterMs) svc.attempt = 0;
    svc.failures = svc.failures.filter((t) => now - t < policy.windowMs);
    svc.failures.push(now);
    if (svc.failures.length > policy.maxFailures) {
      const detail = `failed ${svc.failures.length} times within ${seconds(policy.windowMs)}`;
      this.setState(svc, 'fatal', detail);
      this.log(`${spec.name} ${detail}; giving up (FATAL)`);
      this.schedule();
      return;
    }
    const delay = restartDelay(policy, svc.attempt, this.random);
    svc.attempt += 1;
    this.setState(svc, 'backoff', `restart in ${seconds(delay)}`);
    this.log(`restarting ${spec.name} in ${seconds(delay)}`);
    svc.timer = this.clock.setTimeout(() => {
      svc.timer = null;
      void this.launch(svc);
    }, delay);
  }

  private park(svc: Runtime, reason: string): void {
    const spec = svc.spec;
    if (svc.waitReason !== reason) {
      this.sink.write(spec.name, `${reason}; waiting`);
      svc.waitReason = reason;
    }
    svc.blockedOnDependencies = false;
    this.setState(svc, 'waiting', reason);
    const recheck = spec.kind === 'child' ? (spec.waitRecheckMs ?? DEFAULT_WAIT_RECHECK_MS) : DEFAULT_WAIT_RECHECK_MS;
    this.clearTimer(svc);
    svc.timer = this.clock.setTimeout(() => {
      svc.timer = null;
      void this.launch(svc);
    }, recheck);
  }

  /** TERM (or the service's stop signal) to the group, SIGKILL after the deadline; resolves on exit. */
  private terminate(svc: Runtime): Promise<void> {
    const child = svc.child;
    const spec = svc.spec;
    if (!child || spec.kind !== 'child') return Promise.resolve();
    svc.expectingExit = true;
    this.clearTimer(svc);
    this.setState(svc, 'stopping', null);
    return new Promise<void>((resolve) => {
      let killTimer: TimerHandle | null = null;
      let giveUpTimer: TimerHandle | null = null;
      const done = (): void => {
        if (killTimer) this.clock.clearTimeout(killTimer);
        if (giveUpTimer) this.clock.clearTimeout(giveUpTimer);
        resolve();
      };
      svc.exitWaiters.push(done);
      child.kill(spec.stopSignal ?? 'SIGTERM');
      killTimer = this.clock.setTimeout(() => {
        killTimer = null;
        this.log(`${spec.name} still running ${seconds(spec.stopDeadlineMs)} after ${spec.stopSignal ?? 'SIGTERM'}; sending SIGKILL to its process group`);
        child.kill('SIGKILL');
        giveUpTimer = this.clock.setTimeout(() => {
          giveUpTimer = null;
          this.log(`${spec.name} (pid ${child.pid}) did not exit after SIGKILL; leaving it`);
          if (svc.child === child) svc.child = null;
          svc.exitWaiters = svc.exitWaiters.filter((w) => w !== done);
          resolve();
        }, this.killGraceMs);
      }, spec.stopDeadlineMs);
    });
  }

  private serviceHealth(svc: Runtime): ServiceHealth {
    const pid = svc.spec.kind === 'child' ? (svc.child?.pid ?? null) : null;
    return {
      state: svc.state,
      pid,
      restarts: svc.restarts,
      since: new Date(svc.since).toISOString(),
      lastExit: svc.lastExit,
      essential: svc.spec.essential,
      detail: svc.detail ?? (svc.spec.kind === 'child' ? (svc.spec.statusDetail?.() ?? null) : null),
    };
  }

  private setState(svc: Runtime, state: ServiceState, detail: string | null): void {
    if (svc.state !== state) svc.since = this.clock.now();
    svc.state = state;
    svc.detail = detail;
  }

  private clearTimer(svc: Runtime): void {
    if (svc.timer) this.clock.clearTimeout(svc.timer);
    svc.timer = null;
  }

  private runtime(name: string): Runtime {
    const svc = this.services.get(name);
    if (!svc) throw new UnknownServiceError(name);
    return svc;
  }

  private log(line: string): void {
    this.sink.write('supervisor', line);
  }
}

/** Topological order of the table (dependencies first, table order otherwise); throws on a cycle. */
export function dependencyOrder(specs: readonly Pick<ServiceSpec, 'name' | 'dependsOn'>[]): string[] {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const done = new Set<string>();
  const visiting = new Set<string>();
  const order: string[] = [];
  const visit = (name: string, path: string[]): void => {
    if (done.has(name)) return;
    if (visiting.has(name)) throw new Error(`dependency cycle: ${[...path, name].join(' -> ')}`);
    const spec = byName.get(name);
    if (!spec) throw new Error(`unknown service "${name}"`);
    visiting.add(name);
    for (const dep of spec.dependsOn) visit(dep, [...path, name]);
    visiting.delete(name);
    done.add(name);
    order.push(name);
  };
  for (const spec of specs) visit(spec.name, []);
  return order;
}

function describeExit(exit: ExitInfo): string {
  if (exit.error) return `could not be started (${exit.error})`;
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 && ms % 1000 !== 0 ? 1 : 0)}s`;
}

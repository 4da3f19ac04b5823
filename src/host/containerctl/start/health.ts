import { applianceHealth, fatalServices } from '../appliance.js';
import type { Clock, Output } from '../context.js';
import type { Engine } from '../engine/engine.js';

export type HealthWait =
  | { healthy: true; seconds: string }
  /** `exited`: the container stopped or is being restarted by the engine. */
  | { healthy: false; reason: string; exited: boolean };

export interface HealthWaitOptions {
  timeoutSeconds: number;
  clock: Clock;
  out: Output;
  pollMs?: number;
}

/**
 * Waits until the engine reports the container healthy, so that `docker inspect` agrees with us when
 * `start` returns. Meanwhile the supervisor is asked directly (`cw-appliance health`, the same report
 * the HEALTHCHECK asks for) to fail early on a FATAL service. Its answer alone is accepted when the engine
 * has no health status to give (no healthcheck) and for Podman, whose healthchecks depend on systemd
 * timers that hosts without systemd never fire. Fails early too when the container exits or restarts.
 */
export async function waitUntilHealthy(engine: Engine, id: string, options: HealthWaitOptions): Promise<HealthWait> {
  const { clock, out } = options;
  const pollMs = options.pollMs ?? 500;
  const started = clock.now();
  const deadline = started + options.timeoutSeconds * 1000;
  const seconds = () => ((clock.now() - started) / 1000).toFixed(1);
  out.write(`Waiting for cw-headnode to become healthy (up to ${options.timeoutSeconds} s)...\n`);
  let pending: string[] = [];
  for (;;) {
    const details = await engine.inspectContainer(id);
    if (!details) return { healthy: false, reason: 'the container disappeared', exited: true };
    if (details.restarting || details.restartCount > 0) {
      return { healthy: false, reason: 'the container keeps exiting (the engine is restarting it)', exited: true };
    }
    if (!details.running) {
      return { healthy: false, reason: `the container exited with code ${details.exitCode}`, exited: true };
    }
    if (details.health === 'healthy') return { healthy: true, seconds: seconds() };
    const report = await applianceHealth(engine, details);
    const engineHasNoSay = details.health === undefined || details.health === 'none' || engine.identity.kind === 'podman';
    if (report?.status === 'healthy' && engineHasNoSay) return { healthy: true, seconds: seconds() };
    const fatal = report ? fatalServices(report) : [];
    if (fatal.length > 0) {
      return { healthy: false, reason: `service${fatal.length > 1 ? 's' : ''} ${fatal.join(', ')} failed (FATAL)`, exited: false };
    }
    if (details.health === 'unhealthy') return { healthy: false, reason: 'the engine reports it unhealthy', exited: false };
    if (report) pending = report.services.filter((s) => !/^(ready|running)$/i.test(s.state)).map((s) => `${s.name} ${s.state}`);
    if (clock.now() >= deadline) {
      const waiting = pending.length > 0 ? `; waiting for ${pending.join(', ')}` : '';
      const health = details.health ?? report?.status ?? 'unknown';
      return { healthy: false, reason: `not healthy after ${options.timeoutSeconds} s (health: ${health}${waiting})`, exited: false };
    }
    await clock.sleep(pollMs);
  }
}

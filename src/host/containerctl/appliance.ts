import { ExitError } from '../../lib/errors.js';
import type { ContainerDetails, Engine, ExecResult } from './engine/engine.js';
import { CONTAINER_STORAGE } from '../../lib/storage-layout.js';
import { APPLIANCE_LABEL, STORAGE_LABEL } from './labels.js';

/** The in-container admin command (see ARCHITECTURE.md, "cw-appliance"). */
export const APPLIANCE_COMMAND = 'cw-appliance';

export function isAppliance(labels: Record<string, string>): boolean {
  return labels[APPLIANCE_LABEL] === 'true';
}

/** The host storage directory of a container: its label, else the bind mount's source. */
export function storageOf(container: ContainerDetails): string {
  return container.labels[STORAGE_LABEL] ?? container.mounts[CONTAINER_STORAGE] ?? '?';
}

/**
 * `host`, or the engine network the container is on. Podman reports `bridge` as the mode for any
 * named network, so the attached network's name is preferred when there is exactly one.
 */
export function networkOf(container: ContainerDetails): string {
  const mode = container.networkMode;
  if (mode === 'host' || mode === '') return 'host';
  const names = Object.keys(container.networks);
  if (names.includes(mode)) return mode;
  return names.length === 1 ? names[0]! : mode;
}

/** Running (or restarting/paused) as far as a second start is concerned. */
export function isActive(container: { state: string }): boolean {
  return ['running', 'restarting', 'paused'].includes(container.state);
}

/**
 * The running cw-headnode container: the one named `name`, or the only one running.
 * Throws `no running cw-headnode container` otherwise.
 */
export async function findRunningAppliance(engine: Engine, name?: string): Promise<ContainerDetails> {
  if (name) {
    const found = await engine.inspectContainer(name);
    if (!found || !isAppliance(found.labels) || !found.running) {
      throw new ExitError(`no running cw-headnode container named ${name}`);
    }
    return found;
  }
  const running = (await engine.listApplianceContainers()).filter((c) => c.state === 'running');
  if (running.length === 0) throw new ExitError('no running cw-headnode container');
  if (running.length > 1) {
    throw new ExitError(`several cw-headnode containers are running (${running.map((c) => c.name).join(', ')}); choose one with --name`);
  }
  const details = await engine.inspectContainer(running[0]!.id);
  if (!details || !details.running) throw new ExitError('no running cw-headnode container');
  return details;
}

/**
 * A cw-headnode container in any state (for logs): the one named `name`, else the only one, else the
 * only running one.
 */
export async function findAppliance(engine: Engine, name?: string): Promise<ContainerDetails> {
  if (name) {
    const found = await engine.inspectContainer(name);
    if (!found || !isAppliance(found.labels)) throw new ExitError(`no cw-headnode container named ${name}`);
    return found;
  }
  const all = await engine.listApplianceContainers();
  const running = all.filter((c) => c.state === 'running');
  const chosen = all.length === 1 ? all[0] : running.length === 1 ? running[0] : undefined;
  if (all.length === 0) throw new ExitError('no cw-headnode container');
  if (!chosen) throw new ExitError(`several cw-headnode containers exist (${all.map((c) => c.name).join(', ')}); choose one with --name`);
  const details = await engine.inspectContainer(chosen.id);
  if (!details) throw new ExitError('no cw-headnode container');
  return details;
}

/** Runs `cw-appliance ARGS` in the container; its `ERROR:` line becomes the ExitError on failure. */
export function runAppliance(engine: Engine, container: ContainerDetails, args: string[], env: string[] = []): Promise<ExecResult> {
  return engine.exec(container.id, [APPLIANCE_COMMAND, ...args], { env, check: true });
}

export interface ServiceHealth {
  name: string;
  state: string;
  restarts: number | undefined;
}

/** The supervisor's health report, as printed by `cw-appliance health`. */
export interface HealthSummary {
  status: string;
  services: ServiceHealth[];
}

/** Parses `cw-appliance health` output (`{"status":..., "services":{NAME:{state,...}}}`); undefined if it is not that. */
export function parseHealth(stdout: string): HealthSummary | undefined {
  let value: unknown;
  try {
    value = JSON.parse(stdout.trim());
  } catch {
    return undefined;
  }
  if (!value || typeof value !== 'object') return undefined;
  const doc = value as { status?: unknown; services?: unknown; data?: unknown };
  // Accept the API's envelope too, in case the command prints it as is.
  if (doc.data && typeof doc.data === 'object' && doc.status === undefined) return parseHealth(JSON.stringify(doc.data));
  if (typeof doc.status !== 'string') return undefined;
  const services: ServiceHealth[] = [];
  if (doc.services && typeof doc.services === 'object') {
    for (const [name, raw] of Object.entries(doc.services as Record<string, unknown>)) {
      const s = (raw ?? {}) as { state?: unknown; restarts?: unknown };
      services.push({
        name,
        state: typeof s.state === 'string' ? s.state : 'unknown',
        restarts: typeof s.restarts === 'number' ? s.restarts : undefined,
      });
    }
  }
  return { status: doc.status, services };
}

/** Services that ended FATAL. */
export function fatalServices(health: HealthSummary): string[] {
  return health.services.filter((s) => s.state.toUpperCase() === 'FATAL').map((s) => s.name);
}

/** Asks the supervisor for its health; undefined when the command cannot run or answers nothing useful. */
export async function applianceHealth(engine: Engine, container: { id: string }): Promise<HealthSummary | undefined> {
  try {
    const result = await engine.exec(container.id, [APPLIANCE_COMMAND, 'health'], { check: false, timeoutMs: 10_000 });
    return parseHealth(result.stdout) ?? (result.exitCode === 0 ? { status: 'healthy', services: [] } : undefined);
  } catch {
    return undefined;
  }
}

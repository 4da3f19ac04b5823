// Power actions on nodes: one plugin call per node under a deadline, many nodes with a bounded fan-out.
// An unreachable BMC costs its node's deadline and never more: the plugin's process is killed (or its
// session ended) when the deadline fires, and the node's answer is given then even if the plugin has not
// returned.
import { DeadlineError, execaRunner, type CommandRunner } from './command.js';
import { ipmiPlugin } from './ipmi.js';
import { bmcKey, probeBmcs, type BmcAddress } from './ipmi-probe.js';
import { redfishPlugin } from './redfish.js';
import { ensureSshKey, type SshIdentity } from './ssh.js';
import { describeTarget, parsePowerTarget, PowerUriError, type PowerTarget } from './uri.js';
import { libvirtPlugin, vboxPlugin } from './virt.js';
import type { NodePowerAction, PowerPlugin, PowerState } from './types.js';

/** Per-node deadline unless the caller gives one. */
export const DEFAULT_POWER_TIMEOUT_MS = 10_000;
/** Nodes worked on at once unless the caller says otherwise. */
export const DEFAULT_POWER_FANOUT = 64;

export interface PowerNode {
  name: string;
  /** The effective power_uri (the node's own, else inherited through `_power_uri`), or null. */
  powerUri: string | null;
}

/** One node's answer: `n3: on`, `n7: ERROR: BMC 10.1.15.7 did not answer within 10 s`. */
export interface PowerResult {
  name: string;
  ok: boolean;
  /** The power state after a status query, or what the node was found in before `boot`. */
  state?: PowerState;
  /** What a user reads after `n3: ` when ok: `on`, `off`, `reset`, `cycle`, ... */
  result?: string;
  error?: string;
}

export interface PowerRunOptions {
  /** Per-node deadline in ms (default 10 s). */
  timeoutMs?: number;
  /** The appliance's ssh key and known hosts (relays, hypervisors). */
  identity: SshIdentity;
  /** Runs plugin programs (default: execa). */
  run?: CommandRunner;
  /** Makes the plugin of a target (default: by scheme); tests substitute slow or failing ones. */
  pluginFor?: (target: PowerTarget) => PowerPlugin | Promise<PowerPlugin>;
}

/** `10000` -> `10 s`, `1500` -> `1.5 s`. */
export function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** The plugin for a parsed target. */
export async function defaultPlugin(target: PowerTarget, run: CommandRunner, identity: SshIdentity): Promise<PowerPlugin> {
  const needsKey = (target.scheme === 'ipmi' && target.relay) || ((target.scheme === 'libvirt' || target.scheme === 'vbox') && target.host);
  if (needsKey) await ensureSshKey(identity);
  switch (target.scheme) {
    case 'ipmi':
      return ipmiPlugin(target, run, identity);
    case 'redfish':
    case 'redfish+http':
      return redfishPlugin(target);
    case 'libvirt':
      return libvirtPlugin(target, run, identity);
    case 'vbox':
      return vboxPlugin(target, run, identity);
  }
}

/**
 * Runs `action` on one node within its deadline; never throws.
 * Example: `await powerNode({ name: 'n3', powerUri: 'ipmi:///admin:pw@10.1.15.3' }, 'status', { identity })`
 * -> `{ name: 'n3', ok: true, state: 'on', result: 'on' }`.
 */
export async function powerNode(node: PowerNode, action: NodePowerAction, options: PowerRunOptions): Promise<PowerResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_POWER_TIMEOUT_MS;
  if (node.powerUri === null || node.powerUri === '') {
    return { name: node.name, ok: false, error: `no power_uri (set one: cw-nodectl -i ${node.name} update power_uri=ipmi:///USER:PASSWORD@BMC)` };
  }
  let target: PowerTarget;
  try {
    target = parsePowerTarget(node.powerUri).target;
  } catch (err) {
    return { name: node.name, ok: false, error: err instanceof PowerUriError ? `power_uri: ${err.message}` : 'power_uri cannot be used' };
  }
  const controller = new AbortController();
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort(new DeadlineError());
      reject(new DeadlineError());
    }, timeoutMs);
  });
  const left = () => Math.max(0.001, (timeoutMs - (Date.now() - started)) / 1000);
  const work = async (): Promise<PowerResult> => {
    const run = options.run ?? execaRunner;
    const plugin = await (options.pluginFor ? options.pluginFor(target) : defaultPlugin(target, run, options.identity));
    const signal = controller.signal;
    if (action === 'status') {
      const state = await plugin.status(signal, left());
      return { name: node.name, ok: true, state, result: state };
    }
    if (action === 'boot') {
      const state = await plugin.status(signal, left());
      const step = state === 'off' ? 'on' : 'reset';
      await plugin.act(step, signal, left());
      return { name: node.name, ok: true, state, result: step };
    }
    await plugin.act(action, signal, left());
    return { name: node.name, ok: true, result: action };
  };
  try {
    return await Promise.race([work(), deadline]);
  } catch (err) {
    if (err instanceof DeadlineError || controller.signal.aborted) {
      return { name: node.name, ok: false, error: `${describeTarget(target)} did not answer within ${seconds(timeoutMs)}` };
    }
    return { name: node.name, ok: false, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
    // A plugin still running after its answer (the race was lost) is stopped too.
    controller.abort(new DeadlineError());
  }
}

/** Counts running work across requests, so that many callers together stay under one bound. */
export class Limiter {
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  constructor(readonly limit: number) {}

  async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running >= this.limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}

export interface PowerManyOptions extends PowerRunOptions {
  /** Nodes at once (default 64). */
  fanout?: number;
  /** Called with each node's answer as it arrives. */
  onResult?: (result: PowerResult) => void;
  /** A bound shared with other callers (the API's). */
  limiter?: Limiter;
  /**
   * Ask every local IPMI BMC whether it answers at all before taking a fan-out slot (default: when the
   * real plugins run, i.e. without `pluginFor` or `run`): a silent one then costs its deadline alongside
   * the others instead of holding a slot for it.
   */
  probe?: boolean;
  /** At most `nodes` nodes started every `seconds` (a rack's breaker): node i starts no sooner than floor(i / nodes) * seconds. */
  stagger?: { nodes: number; seconds: number };
  /** Waits (tests: a fake clock). */
  sleep?: (ms: number) => Promise<void>;
}

/** The BMC the appliance talks to directly (not through a relay), for the probe. */
function directBmc(node: PowerNode): BmcAddress | undefined {
  if (!node.powerUri) return undefined;
  try {
    const { target } = parsePowerTarget(node.powerUri);
    if (target.scheme !== 'ipmi' || target.relay) return undefined;
    return { host: target.bmc, port: target.port ?? 623 };
  } catch {
    return undefined; // powerNode says what is wrong with it
  }
}

/**
 * Runs `action` on every node, at most `fanout` at once; answers in the order of `nodes`. Local IPMI BMCs
 * are first asked, all at once, whether they answer: a silent one is reported at its deadline without
 * ever taking a slot or starting a session (100 silent BMCs cost one deadline, not ⌈100 / fanout⌉).
 */
export async function powerMany(nodes: readonly PowerNode[], action: NodePowerAction, options: PowerManyOptions): Promise<PowerResult[]> {
  const fanout = Math.max(1, Math.min(options.fanout ?? DEFAULT_POWER_FANOUT, nodes.length || 1));
  const timeoutMs = options.timeoutMs ?? DEFAULT_POWER_TIMEOUT_MS;
  const results: PowerResult[] = new Array(nodes.length);
  const bmcs = nodes.map(directBmc);
  const probe = options.probe ?? (options.pluginFor === undefined && options.run === undefined);
  const answers = probe ? probeBmcs(bmcs.filter((b) => b !== undefined), { deadlineMs: timeoutMs }) : new Map<string, Promise<boolean>>();
  const slots = new Limiter(fanout);
  const started = Date.now();
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  await Promise.all(
    nodes.map(async (node, i) => {
      // The stagger delays the start, not the probe (which powers nothing), and holds no slot.
      if (options.stagger) {
        const wait = started + Math.floor(i / options.stagger.nodes) * options.stagger.seconds * 1000 - Date.now();
        if (wait > 0) await sleep(wait);
      }
      const bmc = bmcs[i];
      const answering = bmc ? answers.get(bmcKey(bmc)) : undefined;
      let result: PowerResult;
      if (answering !== undefined && !(await answering)) {
        // The words powerNode uses for a BMC that stays silent until the deadline.
        result = { name: node.name, ok: false, error: `BMC ${bmc!.host} did not answer within ${seconds(timeoutMs)}` };
      } else {
        const run = () => powerNode(node, action, options);
        result = await slots.use(() => (options.limiter ? options.limiter.use(run) : run()));
      }
      results[i] = result;
      options.onResult?.(result);
    }),
  );
  return results;
}

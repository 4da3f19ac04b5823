// reboot and shutdown of nodes (seed 003): `soft` runs the node's own /usr/sbin/reboot or
// `/usr/sbin/shutdown -h now` over ssh; `hard` is the power_uri's reset or off; `auto` (no flag) is
// soft when the node is up and answers, then hard when it has not gone down within the deadline.
import { connect } from 'node:net';
import { seconds } from '../power/run.js';
import type { PowerResult } from '../power/run.js';
import { SSH_FAILURE, type ExecResult } from './run.js';

export const NODE_OS_ACTIONS = ['reboot', 'shutdown'] as const;
export type NodeOsAction = (typeof NODE_OS_ACTIONS)[number];
export const REBOOT_MODES = ['soft', 'hard', 'auto'] as const;
export type RebootMode = (typeof REBOOT_MODES)[number];

/** Default deadline for a node to go down after a soft action before the hard one, in ms. */
export const DEFAULT_DOWN_TIMEOUT_MS = 60_000;
/** The longest the soft command's ssh may take. */
export const SOFT_COMMAND_TIMEOUT_MS = 15_000;
/** How often a node is checked for having gone down. */
export const DOWN_POLL_MS = 1000;

/** What runs on the node for a soft action (argv; quoted for the remote shell like any exec). */
export const SOFT_COMMANDS: Record<NodeOsAction, readonly string[]> = {
  reboot: ['/usr/sbin/reboot'],
  shutdown: ['/usr/sbin/shutdown', '-h', 'now'],
};
/** The power action for a hard one. */
export const HARD_ACTIONS: Record<NodeOsAction, 'reset' | 'off'> = { reboot: 'reset', shutdown: 'off' };

/** One node's answer: `result` says what was done (`soft`, `hard`), `note` why hard when it was chosen. */
export interface RebootResult {
  name: string;
  ok: boolean;
  result?: 'soft' | 'hard';
  note?: string;
  error?: string;
}

/** What rebootNode needs from the world (tests: fakes). */
export interface RebootDeps {
  /** Runs `words` on the node over ssh (execNode). */
  exec(words: readonly string[], timeoutMs: number): Promise<ExecResult>;
  /** The power_uri action (powerNode). */
  power(action: 'reset' | 'off'): Promise<PowerResult>;
  /** The node's state is `up` (it reports to the head node). */
  isUp(): Promise<boolean>;
  /** The node has gone down since the soft action: its sshd no longer answers, or it stopped being up. */
  wentDown(): Promise<boolean>;
  sleep?(ms: number): Promise<void>;
  now?(): number;
}

/**
 * A soft command counts as given when ssh says so, or when the node dropped the connection under it
 * (a fast reboot kills sshd before the command's exit status is sent).
 */
export function softAccepted(r: ExecResult): boolean {
  if (r.ok) return true;
  // ssh's complaint is in `error`, and in stderr only when it said more.
  return r.exit_code === SSH_FAILURE && /closed by remote host|connection reset|broken pipe/i.test(`${r.error ?? ''}\n${r.stderr}`);
}

/**
 * Reboots or shuts down one node; never throws.
 * Example: `await rebootNode('n3', 'reboot', 'auto', 60_000, deps)` -> `{ name: 'n3', ok: true, result: 'soft' }`,
 * or `{ ..., result: 'hard', note: 'still up 60 s after the soft reboot' }`.
 */
export async function rebootNode(name: string, action: NodeOsAction, mode: RebootMode, timeoutMs: number, deps: RebootDeps): Promise<RebootResult> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = deps.now ?? Date.now;
  const soft = async (): Promise<string | undefined> => {
    const r = await deps.exec(SOFT_COMMANDS[action], Math.min(timeoutMs, SOFT_COMMAND_TIMEOUT_MS));
    return softAccepted(r) ? undefined : (r.error ?? 'failed');
  };
  const hard = async (note?: string): Promise<RebootResult> => {
    const p = await deps.power(HARD_ACTIONS[action]);
    const prefix = note === undefined ? '' : `${note}; `;
    if (!p.ok) return { name, ok: false, error: `${prefix}hard ${action} (power ${HARD_ACTIONS[action]}): ${p.error ?? 'failed'}` };
    return { name, ok: true, result: 'hard', ...(note === undefined ? {} : { note }) };
  };

  try {
    if (mode === 'soft') {
      const error = await soft();
      return error === undefined ? { name, ok: true, result: 'soft' } : { name, ok: false, error: `soft ${action}: ${error}` };
    }
    if (mode === 'hard') return await hard();
    if (!(await deps.isUp())) return await hard('not up');
    const started = now();
    const error = await soft();
    if (error !== undefined) return await hard(`soft ${action}: ${error}`);
    while (now() - started < timeoutMs) {
      if (await deps.wentDown()) return { name, ok: true, result: 'soft' };
      await sleep(Math.min(DOWN_POLL_MS, Math.max(0, timeoutMs - (now() - started))));
    }
    return await hard(`still up ${seconds(timeoutMs)} after the soft ${action}`);
  } catch (err) {
    return { name, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Whether a TCP connection to `host:port` is refused or not answered within `timeoutMs`. */
export function portClosed(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (closed: boolean) => {
      socket.destroy();
      resolve(closed);
    };
    socket.setTimeout(timeoutMs, () => done(true));
    socket.once('connect', () => done(false));
    socket.once('error', () => done(true));
  });
}

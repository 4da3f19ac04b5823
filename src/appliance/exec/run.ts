// `exec` on nodes: one ssh per node under a per-node deadline, many nodes with a bounded fan-out (the
// power code's Limiter bounds all requests together). stdout and stderr are kept apart. With a pool of
// masters (masters.ts) the ssh is a mux client over the node's kept-open connection.
import { execa } from 'execa';
import { Limiter, seconds } from '../power/run.js';
import { ensureSshKey, type SshIdentity } from '../power/ssh.js';
import { pinnedHosts } from './host-keys.js';
import { withoutMuxNoise, type Lease, type SshMasters } from './masters.js';
import { masterTarget, nodeSshArgv, type ExecTarget } from './remote.js';

/** Per-node deadline unless the caller gives one. */
export const DEFAULT_EXEC_TIMEOUT_MS = 60_000;
/** Nodes at once unless the caller says otherwise (as for power). */
export const DEFAULT_EXEC_FANOUT = 64;
/** Output kept per stream and node; more is cut and said so. */
export const MAX_EXEC_OUTPUT = 1024 * 1024;
/** ssh's own failures (cannot connect, refused key, changed host key) exit with this status. */
export const SSH_FAILURE = 255;

/** One node's answer. `ok` when the command ran and exited 0. */
export interface ExecResult {
  name: string;
  ok: boolean;
  /** The command's exit status (absent when it never ran or was stopped at its deadline). */
  exit_code?: number;
  stdout: string;
  stderr: string;
  /** One line saying why the node failed: `exit status 2`, `ssh: Connection refused`, `no answer within 5 s`. */
  error?: string;
}

/** Runs a program and gives its exit status and output (tests: a fake). */
export type ExecRunner = (
  file: string,
  args: readonly string[],
  options: { input?: string; signal: AbortSignal; maxBuffer: number },
) => Promise<{ exitCode?: number; stdout: string; stderr: string; canceled: boolean; notFound: boolean }>;

export const execaExecRunner: ExecRunner = async (file, args, options) => {
  const subprocess = execa(file, [...args], {
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
    cancelSignal: options.signal,
    forceKillAfterDelay: 1000,
    reject: false,
    maxBuffer: options.maxBuffer,
    encoding: 'utf8',
    stripFinalNewline: false,
  });
  // At the deadline: a mux client hands its stdout and stderr to its master, which keeps them open until
  // the node's command ends, so once the client has exited its pipes are not waited for.
  const letGo = () => {
    subprocess.stdout?.destroy();
    subprocess.stderr?.destroy();
  };
  const onAbort = () => {
    if (subprocess.exitCode !== null || subprocess.signalCode !== null) letGo();
    else subprocess.once('exit', letGo);
  };
  options.signal.addEventListener('abort', onAbort, { once: true });
  const result = await subprocess;
  options.signal.removeEventListener('abort', onAbort);
  const code = (result as { code?: unknown }).code;
  return {
    ...(typeof result.exitCode === 'number' ? { exitCode: result.exitCode } : {}),
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    canceled: result.isCanceled || options.signal.aborted,
    notFound: code === 'ENOENT',
  };
};

export interface ExecOptions {
  identity: SshIdentity;
  /** Per-node deadline in ms (default 60 s). */
  timeoutMs?: number;
  /** Given to the command's stdin on every node. */
  input?: string;
  run?: ExecRunner;
  /** Kept-open connections to reuse (without: one connection per call). */
  masters?: SshMasters;
}

/** The first line of ssh's complaint, for `ssh: ...` errors. */
function sshComplaint(stderr: string): string {
  const line = stderr.split('\n').map((l) => l.replace(/[\p{C}]/gu, '').trim()).find((l) => l !== '');
  return line === undefined ? 'ssh failed' : line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

/**
 * Runs `words` on one node within its deadline; never throws.
 * Example: `await execNode({ name: 'n3', ip: '10.0.0.3' }, ['hostname'], { identity })` ->
 * `{ name: 'n3', ok: true, exit_code: 0, stdout: 'n3\n', stderr: '' }`.
 */
export async function execNode(target: ExecTarget, words: readonly string[], options: ExecOptions): Promise<ExecResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  const failed = (error: string, extra: Partial<ExecResult> = {}): ExecResult => ({ name: target.name, ok: false, stdout: '', stderr: '', ...extra, error });
  if (target.ip === null) return failed(`no IP address (set one: cw-nodectl -i ${target.name} update ip=...)`);
  try {
    await ensureSshKey(options.identity);
  } catch {
    return failed('the head node could not make its ssh key (is ssh-keygen installed?)');
  }
  if (target.hostKey !== undefined) {
    try {
      await pinnedHosts(options.identity).pin(target.name, target.hostKey);
    } catch (err) {
      return failed(`could not record the host key ${target.name} reported: ${(err as Error).message}`);
    }
  }
  const signal = AbortSignal.timeout(timeoutMs);
  const connectTimeoutS = Math.min(10, timeoutMs / 1000);
  const lease: Lease = options.masters ? await options.masters.acquire(masterTarget({ ...target, ip: target.ip }), connectTimeoutS, signal) : { kind: 'direct' };
  if (lease.kind === 'timeout') return failed(`no answer within ${seconds(timeoutMs)}`);
  // The master could not connect: the same answer as a plain ssh failing the same way.
  if (lease.kind === 'failed') return answer(target, { exitCode: SSH_FAILURE, stdout: '', stderr: lease.complaint, canceled: false, notFound: false }, timeoutMs);
  const args = nodeSshArgv(target, words, options.identity, connectTimeoutS, lease.kind === 'mux' ? lease.controlPath : undefined);
  const run = options.run ?? execaExecRunner;
  try {
    const r = await run('ssh', args, { ...(options.input === undefined ? {} : { input: options.input }), signal, maxBuffer: MAX_EXEC_OUTPUT });
    if (lease.kind !== 'mux') return answer(target, r, timeoutMs);
    const stderr = withoutMuxNoise(r.stderr);
    // A mux client whose connection dropped under it says nothing; its master says why (a rebooting node
    // closes it: soft reboot counts on `closed by remote host`).
    const complaint = !r.canceled && r.exitCode === SSH_FAILURE && stderr.trim() === '' ? await lease.masterComplaint() : undefined;
    return answer(target, { ...r, stderr: complaint ?? stderr }, timeoutMs);
  } finally {
    if (lease.kind === 'mux') lease.release();
  }
}

/** One node's answer from how its ssh ended. */
function answer(target: ExecTarget, r: Awaited<ReturnType<ExecRunner>>, timeoutMs: number): ExecResult {
  const failed = (error: string, extra: Partial<ExecResult> = {}): ExecResult => ({ name: target.name, ok: false, stdout: '', stderr: '', ...extra, error });
  const output = { stdout: r.stdout, stderr: r.stderr };
  if (r.canceled) return failed(`no answer within ${seconds(timeoutMs)}`, output);
  if (r.notFound) return failed('ssh is not installed on the head node');
  if (r.exitCode === undefined) return failed('ssh was stopped', output);
  if (r.exitCode === SSH_FAILURE) {
    let complaint = sshComplaint(r.stderr);
    if (target.hostKey !== undefined && /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/.test(r.stderr)) {
      complaint = `ssh: refused: the host answering at ${target.ip} does not have the key ${target.name} reported at boot (if it has just rebooted, try again once it is up)`;
    }
    // ssh's complaint alone is said once, in the error; anything else on stderr is kept.
    const alone = r.stderr.trim() === complaint;
    return failed(complaint.startsWith('ssh: ') ? complaint : `ssh: ${complaint}`, { ...output, ...(alone ? { stderr: '' } : {}), exit_code: r.exitCode });
  }
  if (r.exitCode !== 0) return failed(`exit status ${r.exitCode}`, { ...output, exit_code: r.exitCode });
  return { name: target.name, ok: true, exit_code: 0, ...output };
}

/**
 * Calls `fn` on every item, at most `fanout` at once (and, with `limiter`, within a bound shared with
 * other callers); answers in the order of `items`, `onResult` as each arrives.
 */
export async function fanOut<T, R>(
  items: readonly T[],
  fn: (item: T) => Promise<R>,
  options: { fanout?: number; limiter?: Limiter; onResult?: (result: R) => void } = {},
): Promise<R[]> {
  const fanout = Math.max(1, Math.min(options.fanout ?? DEFAULT_EXEC_FANOUT, items.length || 1));
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      const item = items[i] as T;
      const result = options.limiter ? await options.limiter.use(() => fn(item)) : await fn(item);
      results[i] = result;
      options.onResult?.(result);
    }
  };
  await Promise.all(Array.from({ length: fanout }, worker));
  return results;
}

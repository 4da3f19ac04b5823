// Kept-open ssh connections to nodes: one OpenSSH ControlMaster per node that exec or a soft reboot talks
// to, so the next command on that node is a mux client — no key exchange, no authentication, no new sshd
// process on the node: ~5 ms of CPU instead of ~110 ms for a full handshake on both sides.
//
// Why OpenSSH's multiplexing and not an in-process client (the ssh2 package): the same ssh binary and
// options as before keep every behaviour admins rely on — the known_hosts file shared with the power
// plugins (accept-new, a changed key refused, hashed entries), ssh's own error lines, stdin, exit statuses
// — and when a master is gone, or its connection died before a session was opened on it, ssh itself falls
// back to a fresh connection. ssh2 would mean our own known_hosts reading and writing and new error texts,
// for a gain only in the warm case, which multiplexing already brings below the target.
//
// The lifecycle is kept here rather than left to ssh's ControlPersist (which daemonizes the master out of
// reach):
// - a master is `ssh -M -N` in the foreground, a child of the API process (so in its process group: the
//   supervisor's stop reaches it too), started by the first lease for user@ip:port; concurrent first
//   leases wait for the same one; it is ready when its control socket appears (ssh makes it after
//   authentication);
// - a master that exits (node rebooted or gone: ServerAliveInterval 5 s × 3 unanswered; sshd restarted;
//   killed) is forgotten at once and its socket removed; the next lease starts a new one;
// - at most MAX_MASTERS at once (each is an ssh process of ~1 MB of its own): a new one replaces the least
//   recently used idle one, and when all are busy the call makes a plain connection of its own; a master
//   idle for IDLE_MS is ended — 5,000 nodes do not keep 5,000 processes;
// - the key holds the address, so after `update ip=...` the old master is never used again (it idles out);
// - close() (API shutdown) ends them all; the directory is emptied when the pool starts and as masters end.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { closeSync, openSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sshOptions, type SshIdentity } from '../power/ssh.js';
import { pinnedHostOptions } from './host-keys.js';

/** Masters at once; the least recently used idle one makes room for a new one. */
export const MAX_MASTERS = 1000;
/** A master unused this long is ended. */
export const IDLE_MS = 10 * 60_000;
/** A master not ready within this long is ended (its waiters have their own, usually shorter, deadlines). */
export const MASTER_START_MS = 60_000;
/** Keepalive: a master whose node stops answering ends after about 3 × 5 s. */
export const SERVER_ALIVE_INTERVAL_S = 5;
export const SERVER_ALIVE_COUNT_MAX = 3;
/**
 * Longest control socket path. A unix socket path has at most 107 bytes (sun_path, 108 with its NUL), and
 * ssh first binds `PATH.` plus 16 random characters, then renames it to PATH.
 */
export const MAX_CONTROL_PATH = 107 - 17;
/** Hex digits of the hash naming a socket: 64 bits, no collision among any number of nodes we will see. */
const NAME_DIGITS = 16;

/** Where a master connects: `user@host:port`. */
export interface MasterTarget {
  host: string;
  user: string;
  port: number;
  /** The node whose reported host key is the only one accepted (host-keys.ts); absent: accept-new by address. */
  pinnedAs?: string;
}

/** The pool key: one master per user, address and port (and pinned node name, when there is one). */
export function masterKey(to: MasterTarget): string {
  return `${to.user}@${to.host}:${to.port}${to.pinnedAs === undefined ? '' : ` as ${to.pinnedAs}`}`;
}

/**
 * The control socket of `key` in `dir`: a short hash, so any key fits the unix socket path limit.
 * Example: `controlPath('/var/lib/cw/ssh/mux', 'root@10.0.0.3:22')` -> `/var/lib/cw/ssh/mux/6c1f0e2a9b3d4c5e`.
 */
export function controlPath(dir: string, key: string): string {
  return join(dir, createHash('sha256').update(key).digest('hex').slice(0, NAME_DIGITS));
}

/**
 * The directory for the control sockets under the storage's ssh directory, or undefined when its path is
 * too long for a unix socket or holds characters ssh's option parser would take apart (then every call
 * makes its own connection, as without multiplexing).
 */
export function controlDir(sshDir: string): string | undefined {
  const dir = join(sshDir, 'mux');
  if (!/^[A-Za-z0-9._/+=@,-]+$/.test(dir)) return undefined;
  return Buffer.byteLength(controlPath(dir, '')) <= MAX_CONTROL_PATH ? dir : undefined;
}

/** `ControlPath=...` with ssh's `%` tokens escaped. */
function controlPathOption(path: string): string {
  return `ControlPath=${path.replaceAll('%', '%%')}`;
}

/**
 * The argv of the master for `to` (without `ssh`): the appliance's usual options, in the foreground, no
 * command, keepalives.
 */
export function masterArgv(to: MasterTarget, identity: SshIdentity, connectTimeoutS: number, path: string): string[] {
  return [
    // Before the usual options: for ssh the first value of an option wins.
    ...(to.pinnedAs === undefined ? [] : pinnedHostOptions(to.pinnedAs, identity)),
    ...sshOptions(identity, connectTimeoutS),
    '-M',
    '-N',
    '-o',
    controlPathOption(path),
    '-o',
    'ControlPersist=no',
    '-o',
    `ServerAliveInterval=${SERVER_ALIVE_INTERVAL_S}`,
    '-o',
    `ServerAliveCountMax=${SERVER_ALIVE_COUNT_MAX}`,
    '-l',
    to.user,
    '-p',
    String(to.port),
    '--',
    to.host,
  ];
}

/** What a mux client adds to its ssh argv: use the master's socket, never become a master itself. */
export function muxClientOptions(path: string): string[] {
  return ['-o', 'ControlMaster=no', '-o', controlPathOption(path)];
}

// What a mux client says on stderr about the master before it falls back to a connection of its own.
const MUX_NOISE = /^(mux_client_[a-z_]+: .*|Control socket connect\(.*\): .*|ControlSocket .* already exists, disabling multiplexing)$/;

/** stderr without the mux client's leading lines about the master (the command's own output follows them). */
export function withoutMuxNoise(stderr: string): string {
  let rest = stderr;
  for (;;) {
    const end = rest.indexOf('\n');
    const line = (end < 0 ? rest : rest.slice(0, end)).replace(/\r$/, '');
    if (line === '' || !MUX_NOISE.test(line)) return rest;
    rest = end < 0 ? '' : rest.slice(end + 1);
  }
}

/** A running master as the pool sees it (tests: a fake). */
export interface MasterProcess {
  /** Settles when the process has exited. */
  exited: Promise<unknown>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts `ssh ARGS` with nothing on stdin and stdout and its stderr appended to `logFile` (ssh's errors,
 * and `Connection to ... closed by remote host`): the API holds no pipe for it.
 */
export type MasterSpawner = (args: readonly string[], logFile: string) => MasterProcess;

// Masters still running when the API process exits without close() (a crash): ended with it. The
// supervisor's stop signals the API's process group, which holds them too.
const running = new Set<ChildProcess>();
let exitHook = false;

/**
 * Starts a master with node:child_process rather than execa: execa would pipe its stderr through the API
 * into the file (a pipe and a file descriptor held per master, 2,000 for 1,000 masters); here the child
 * gets the file's descriptor and the API closes its own copy at once.
 */
export const spawnMaster: MasterSpawner = (args, logFile) => {
  const fd = openSync(logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    child = spawn('ssh', [...args], { stdio: ['ignore', 'ignore', fd] });
  } finally {
    closeSync(fd);
  }
  running.add(child);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of running) c.kill('SIGTERM');
    });
  }
  const exited = new Promise<void>((resolve) => {
    const done = () => {
      running.delete(child);
      resolve();
    };
    child.once('exit', done);
    // Not started at all (no ssh): 'exit' does not follow.
    child.once('error', done);
  });
  return { exited, kill: (signal = 'SIGTERM') => void child.kill(signal) };
};

/** A lease on the master of one node; `release()` once the mux client is done. */
export type Lease =
  | {
      kind: 'mux';
      controlPath: string;
      release(): void;
      /** After the mux client failed with nothing said: the master's complaint once it has exited (waits up to 1 s). */
      masterComplaint(): Promise<string | undefined>;
    }
  /** The master could not connect: ssh's complaint, as a plain ssh would have said it. */
  | { kind: 'failed'; complaint: string }
  /** The caller's deadline passed while the master was connecting. */
  | { kind: 'timeout' }
  /** No master (pool full of busy masters, unusable directory, closed): connect without one. */
  | { kind: 'direct' };

interface Master {
  key: string;
  path: string;
  logFile: string;
  process: MasterProcess;
  state: 'starting' | 'ready' | 'gone';
  /** Resolves with undefined once ready, or with the complaint when it never got there. */
  ready: Promise<string | undefined>;
  gone: Promise<void>;
  users: number;
  lastUsed: number;
  /** Its log once it has exited. */
  complaint?: string;
  /** Why it was ended by us before it was ready. */
  endedWhy?: string;
}

export interface SshMastersOptions {
  /** Private directory for the control sockets (controlDir); undefined: no multiplexing. */
  dir: string | undefined;
  identity: SshIdentity;
  maxMasters?: number;
  idleMs?: number;
  startMs?: number;
  spawn?: MasterSpawner;
  /** Whether a control socket exists (tests: a fake). */
  isSocket?: (path: string) => Promise<boolean>;
  now?: () => number;
  log?: (line: string) => void;
}

const direct: Lease = { kind: 'direct' };

async function socketExists(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isSocket();
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The appliance's ssh masters, one per node it talks to.
 * Example: `const lease = await masters.acquire({ host: '10.0.0.3', user: 'root', port: 22 }, 10, signal)`;
 * with `lease.kind === 'mux'` run `ssh ...muxClientOptions(lease.controlPath) ...`, then `lease.release()`.
 */
export class SshMasters {
  private readonly masters = new Map<string, Master>();
  private readonly max: number;
  private readonly idleMs: number;
  private readonly startMs: number;
  private readonly spawn: MasterSpawner;
  private readonly isSocket: (path: string) => Promise<boolean>;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private prepared: Promise<boolean> | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: SshMastersOptions) {
    this.max = options.maxMasters ?? MAX_MASTERS;
    this.idleMs = options.idleMs ?? IDLE_MS;
    this.startMs = options.startMs ?? MASTER_START_MS;
    this.spawn = options.spawn ?? spawnMaster;
    this.isSocket = options.isSocket ?? socketExists;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => {});
  }

  /** Masters now (starting or ready). */
  get size(): number {
    return this.masters.size;
  }

  /** The master for `to`, started if there is none; waits for it to be ready, at most until `signal`. */
  async acquire(to: MasterTarget, connectTimeoutS: number, signal: AbortSignal): Promise<Lease> {
    if (this.closed || this.options.dir === undefined || !(await this.prepare())) return direct;
    const key = masterKey(to);
    let master = this.masters.get(key);
    if (master) {
      // Most recently used last: eviction takes the first idle one.
      this.masters.delete(key);
      this.masters.set(key, master);
    } else {
      if (this.masters.size >= this.max && !this.evictOne()) return direct;
      master = await this.start(key, to, connectTimeoutS);
      if (master === undefined) return direct;
    }
    const m = master;
    m.users++;
    m.lastUsed = this.now();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      m.users--;
      m.lastUsed = this.now();
    };
    const outcome = await new Promise<{ complaint: string | undefined } | 'timeout'>((resolve) => {
      if (signal.aborted) return resolve('timeout');
      const onAbort = () => resolve('timeout');
      signal.addEventListener('abort', onAbort, { once: true });
      void m.ready.then((complaint) => {
        signal.removeEventListener('abort', onAbort);
        resolve({ complaint });
      });
    });
    if (outcome === 'timeout') {
      release();
      return { kind: 'timeout' };
    }
    if (outcome.complaint !== undefined) {
      release();
      return { kind: 'failed', complaint: outcome.complaint };
    }
    return {
      kind: 'mux',
      controlPath: m.path,
      release,
      masterComplaint: async () => {
        await Promise.race([m.gone, sleep(1000)]);
        return m.state === 'gone' && m.complaint?.trim() ? m.complaint : undefined;
      },
    };
  }

  /** Ends the master for `to`, if any (its node is going down: the next lease gets a fresh connection). */
  forget(to: MasterTarget): void {
    const master = this.masters.get(masterKey(to));
    if (master) this.end(master);
  }

  /** Ends the masters idle longer than the idle time (called every minute, and by tests). */
  sweep(): void {
    const now = this.now();
    for (const m of [...this.masters.values()]) if (m.users === 0 && now - m.lastUsed >= this.idleMs) this.end(m);
  }

  /** Ends every master and waits for them (KILL after 2 s); later leases connect directly. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    const all = [...this.masters.values()];
    for (const m of all) this.end(m);
    const gone = Promise.all(all.map((m) => m.gone));
    if ((await Promise.race([gone.then(() => true), sleep(2000).then(() => false)])) === false) {
      for (const m of all) m.process.kill('SIGKILL');
      await gone;
    }
  }

  /** Makes the directory (0700) and removes what a previous run left: its masters are asked to exit. */
  private prepare(): Promise<boolean> {
    this.prepared ??= (async () => {
      const dir = this.options.dir as string;
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        await chmod(dir, 0o700);
        for (const name of await readdir(dir)) {
          const path = join(dir, name);
          if (await socketExists(path)) {
            await execa('ssh', ['-o', controlPathOption(path), '-O', 'exit', 'master'], { stdio: 'ignore', reject: false, timeout: 2000 });
          }
          await rm(path, { force: true, recursive: true });
        }
        this.sweeper = setInterval(() => this.sweep(), Math.min(this.idleMs, 60_000));
        this.sweeper.unref();
        return true;
      } catch (err) {
        this.log(`ssh connections are not kept open: ${dir}: ${err instanceof Error ? err.message : String(err)}`);
        return false;
      }
    })();
    return this.prepared;
  }

  private evictOne(): boolean {
    for (const m of this.masters.values()) {
      if (m.users === 0) {
        this.end(m);
        return true;
      }
    }
    return false;
  }

  private end(m: Master, why?: string): void {
    if (this.masters.get(m.key) === m) this.masters.delete(m.key);
    if (m.state === 'gone') return;
    if (why !== undefined) m.endedWhy = why;
    m.process.kill('SIGTERM');
  }

  private async start(key: string, to: MasterTarget, connectTimeoutS: number): Promise<Master | undefined> {
    const path = controlPath(this.options.dir as string, key);
    const logFile = `${path}.log`;
    let setReady!: (complaint: string | undefined) => void;
    let setGone!: () => void;
    const ready = new Promise<string | undefined>((resolve) => (setReady = resolve));
    const gone = new Promise<void>((resolve) => (setGone = resolve));
    // Reserved before the first await: a concurrent first lease finds it and waits for the same master.
    const m: Master = { key, path, logFile, process: { exited: gone, kill: () => {} }, state: 'starting', ready, gone, users: 0, lastUsed: this.now() };
    this.masters.set(key, m);
    try {
      // A socket left behind would make the new master give up multiplexing.
      await rm(path, { force: true });
      await writeFile(logFile, '', { mode: 0o600 });
      m.process = this.spawn(masterArgv(to, this.options.identity, connectTimeoutS, path), logFile);
    } catch (err) {
      if (this.masters.get(key) === m) this.masters.delete(key);
      this.log(`ssh master for ${key}: ${err instanceof Error ? err.message : String(err)}`);
      m.state = 'gone';
      setReady('ssh could not be started');
      setGone();
      return undefined;
    }
    if (m.endedWhy !== undefined || this.closed || this.masters.get(key) !== m) m.process.kill('SIGTERM');
    void m.process.exited.then(async () => {
      m.state = 'gone';
      if (this.masters.get(key) === m) this.masters.delete(key);
      m.complaint = await readFile(logFile, 'utf8').catch(() => '');
      await rm(path, { force: true }).catch(() => {});
      await rm(logFile, { force: true }).catch(() => {});
      setReady(m.complaint.trim() ? m.complaint : (m.endedWhy ?? 'ssh: the connection ended'));
      setGone();
    });
    void (async () => {
      const started = Date.now();
      for (let delay = 5; m.state === 'starting'; delay = Math.min(delay * 2, 100)) {
        if (await this.isSocket(path)) {
          if (m.state !== 'starting') return;
          m.state = 'ready';
          setReady(undefined);
          return;
        }
        if (Date.now() - started > this.startMs) {
          this.end(m, `no answer within ${Math.round(this.startMs / 1000)} s`);
          return;
        }
        await sleep(delay);
      }
    })();
    return m;
  }
}

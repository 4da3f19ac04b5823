// Running commands inside an image root: /proc, /sys, /dev and /dev/pts mounted for the duration, the
// host's resolv.conf in place so package managers resolve names, and everything put back afterwards,
// whatever happened (an error, a failed command, Ctrl-C in an interactive shell).
import { copyFile, lstat, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type Options } from 'execa';
import { ExitError } from '../lib/errors.js';

interface Mount {
  target: string;
  args: string[];
}

/** The mounts a chroot gets, in mount order (unmounted in reverse). */
export function chrootMounts(root: string): Mount[] {
  return [
    { target: join(root, 'proc'), args: ['-t', 'proc', 'proc'] },
    { target: join(root, 'sys'), args: ['-t', 'sysfs', 'sysfs'] },
    { target: join(root, 'dev'), args: ['--bind', '/dev'] },
    { target: join(root, 'dev/pts'), args: ['--bind', '/dev/pts'] },
  ];
}

export interface ChrootSession {
  root: string;
  /** Runs `argv` inside the root; returns the exit code (throws only when it cannot start). */
  run(argv: readonly string[], opts?: ChrootRunOptions): Promise<number>;
}

export interface ChrootRunOptions {
  /** `inherit` for interactive shells; `ignore` (default) gives the command no input. */
  stdin?: 'inherit' | 'ignore';
  /** Where output goes (default: this process's stdout/stderr). */
  stdout?: 'inherit' | 'pipe';
  env?: Record<string, string>;
  /** Receives output lines when stdout is `pipe`. */
  onLine?: (line: string) => void;
}

const RESOLV_SAVED = 'etc/.resolv.conf.cw-saved';

/**
 * Mounts what a chroot needs under `root`, runs `body`, and always unmounts and restores resolv.conf.
 * SIGINT/SIGTERM are held off meanwhile (the command in the chroot gets them; teardown still runs),
 * then reported as an interruption.
 */
export async function withChroot<T>(root: string, body: (s: ChrootSession) => Promise<T>): Promise<T> {
  let signal: NodeJS.Signals | undefined;
  const hold = (s: NodeJS.Signals) => {
    signal = s;
  };
  process.on('SIGINT', hold);
  process.on('SIGTERM', hold);
  const mounted: string[] = [];
  let resolvState: 'none' | 'saved' | 'absent' = 'none';
  try {
    for (const m of chrootMounts(root)) {
      await mkdir(m.target, { recursive: true });
      const r = await execa('mount', [...m.args, m.target], { reject: false, stdin: 'ignore', all: true });
      if (r.exitCode !== 0) throw new ExitError(`cannot mount ${m.target}: ${String(r.all).trim() || `exit ${r.exitCode}`}`);
      mounted.push(m.target);
    }
    resolvState = await putResolvConf(root);
    const session: ChrootSession = {
      root,
      async run(argv, opts = {}) {
        const options: Options = {
          reject: false,
          stdin: opts.stdin ?? 'ignore',
          stdout: opts.stdout ?? 'inherit',
          stderr: opts.stdout ?? 'inherit',
          env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8', TERM: process.env.TERM ?? 'dumb', ...opts.env },
          extendEnv: false,
          ...(opts.stdout === 'pipe' ? { all: true, lines: false } : {}),
        };
        const child = execa('chroot', [root, ...argv], options);
        if (opts.stdout === 'pipe' && opts.onLine) {
          let partial = '';
          child.all?.on('data', (chunk: Buffer) => {
            const lines = (partial + chunk.toString('utf8')).split(/\r?\n/);
            partial = lines.pop() ?? '';
            for (const l of lines) opts.onLine?.(l);
          });
        }
        const r = await child;
        if (r.exitCode === undefined) throw new ExitError(`cannot run ${argv[0]} in ${root}: ${r.message}`);
        return r.exitCode;
      },
    };
    const result = await body(session);
    if (signal) throw new ExitError(`interrupted (${signal})`, 130);
    return result;
  } finally {
    await restoreResolvConf(root, resolvState);
    for (const target of mounted.reverse()) await unmount(target);
    process.off('SIGINT', hold);
    process.off('SIGTERM', hold);
  }
}

async function unmount(target: string): Promise<void> {
  const r = await execa('umount', [target], { reject: false, stdin: 'ignore' });
  if (r.exitCode === 0) return;
  // Something in the chroot still holds it (a daemon an install started): detach it instead.
  await execa('umount', ['--lazy', target], { reject: false, stdin: 'ignore' });
}

async function putResolvConf(root: string): Promise<'saved' | 'absent'> {
  const target = join(root, 'etc/resolv.conf');
  await mkdir(join(root, 'etc'), { recursive: true });
  const had = await lstat(target).then(
    () => true,
    () => false,
  );
  if (had) await rename(target, join(root, RESOLV_SAVED));
  await copyFile('/etc/resolv.conf', target).catch(() => {});
  return had ? 'saved' : 'absent';
}

async function restoreResolvConf(root: string, state: 'none' | 'saved' | 'absent'): Promise<void> {
  if (state === 'none') return;
  const target = join(root, 'etc/resolv.conf');
  await rm(target, { force: true });
  if (state === 'saved') await rename(join(root, RESOLV_SAVED), target);
}

// What every root builder shares: the distro as the API describes it, line-by-line progress, failures.
import { execa } from 'execa';

/** A distro as the builders need it: the API's distro with its repos' URLs (and keys) resolved. */
export interface DistroSpec {
  name: string;
  packageManager: 'apt' | 'dnf' | 'yum';
  /** `bookworm`, `12`, `9`, ... (`$releasever` for dnf/yum). */
  release: string;
  repos: RepoSpec[];
}

export interface RepoSpec {
  name: string;
  urls: string[];
  keys: string[];
}

/** Receives one line of a builder's output (already without its newline). */
export type LineSink = (line: string) => void;

/** A builder's command failed; the message carries its last lines. */
export class BuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildError';
  }
}

/**
 * Runs a build command, feeding each output line to `onLine` and keeping the last ones for the error.
 * `env` adds to the process environment.
 */
export async function runLogged(cmd: string, args: readonly string[], onLine: LineSink | undefined, env: Record<string, string> = {}): Promise<void> {
  const last: string[] = [];
  const child = execa(cmd, args, { reject: false, all: true, buffer: false, stdin: 'ignore', env: { ...process.env, ...env }, extendEnv: false });
  let partial = '';
  child.all?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString('utf8');
    const lines = text.split(/\r?\n/);
    partial = lines.pop() ?? '';
    for (const l of lines) {
      if (l.trim() === '') continue;
      last.push(l);
      if (last.length > 8) last.shift();
      onLine?.(l);
    }
  });
  const r = await child;
  if (partial.trim() !== '') {
    last.push(partial);
    onLine?.(partial);
  }
  if (r.failed && r.exitCode === undefined) {
    const code = (r as { code?: string }).code;
    throw new BuildError(code === 'ENOENT' ? `${cmd} not found on this host: install it (apt-get install ${cmd})` : `cannot run ${cmd}: ${r.message}`);
  }
  if (r.exitCode !== 0) {
    throw new BuildError(`${cmd} failed (exit ${r.exitCode}): ${last.slice(-3).join(' | ') || 'no output'}`);
  }
}

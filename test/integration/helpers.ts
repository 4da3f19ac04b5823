// Shared pieces of the slow suites: the real CLI, a real engine, network namespaces on a test bridge.
import { execa, type Options, type Result } from 'execa';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const cliPath = join(repoRoot, 'dist/host/containerctl/main.js');

/** The image tarball produced by scripts/build-image.sh (newest in build/). */
export function imageTarball(): string {
  const dir = process.env.CW_IMAGE_DIR ?? join(repoRoot, 'build');
  const tars = readdirSync(dir).filter((f) => /^cw-headnode-.*\.tar$/.test(f)).sort();
  const last = tars.at(-1);
  if (!last) throw new Error(`no cw-headnode-*.tar in ${dir}: run scripts/build-image.sh first`);
  return join(dir, last);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `${prefix}-`));
}

export type Run = Result<{ reject: false; all: true }>;

/** Runs cw-containerctl as a user would, never throwing: tests look at exitCode, stdout and stderr. */
export async function ctl(args: string[], opts: { env?: Record<string, string>; input?: string; cwd?: string } = {}): Promise<Run> {
  const options: Options = {
    reject: false,
    all: true,
    env: { ...opts.env, CI: 'true' },
    cwd: opts.cwd ?? repoRoot,
    timeout: 300_000,
    ...(opts.input === undefined ? { stdin: 'ignore' } : { input: opts.input }),
  };
  return (await execa('node', [cliPath, ...args], options)) as unknown as Run;
}

export async function sh(cmd: string, args: string[], opts: { reject?: boolean; input?: string; timeout?: number } = {}) {
  return execa(cmd, args, {
    reject: opts.reject ?? true,
    timeout: opts.timeout ?? 120_000,
    ...(opts.input === undefined ? {} : { input: opts.input }),
  });
}

/** Polls `probe` until it returns a truthy value or the deadline passes; returns that value and the elapsed ms. */
export async function waitFor<T>(probe: () => Promise<T | undefined | false>, timeoutMs: number, stepMs = 100): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  let lastError: unknown;
  while (Date.now() - start < timeoutMs) {
    try {
      const value = await probe();
      if (value) return { value, ms: Date.now() - start };
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ''}`);
}

export interface ServiceHealth {
  state: string;
  pid?: number | null;
  restarts?: number;
}
export interface Health {
  status: string;
  services: Record<string, ServiceHealth>;
}

/** The supervisor's view, through the in-container command the HEALTHCHECK uses. */
export async function health(engineCli: string, container: string): Promise<Health> {
  const r = await execa(engineCli, ['exec', container, 'cw-appliance', 'health'], { reject: false });
  return JSON.parse(r.stdout) as Health;
}

export async function engineExec(engineCli: string, container: string, args: string[], input?: string) {
  return execa(engineCli, ['exec', ...(input === undefined ? [] : ['-i']), container, ...args], {
    reject: false,
    ...(input === undefined ? {} : { input }),
  });
}

/**
 * A test host: a network namespace with a veth whose peer is enslaved to `bridge`.
 * Only addresses inside the test's own bridge subnet are used.
 */
export class TestHost {
  constructor(
    readonly ns: string,
    readonly bridge: string,
    readonly cidr: string,
    readonly mac: string,
  ) {}

  get hostVeth(): string {
    return `v${this.ns}`.slice(0, 15);
  }

  async create(): Promise<void> {
    await this.destroy();
    await sh('ip', ['netns', 'add', this.ns]);
    await sh('ip', ['link', 'add', this.hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.ns]);
    await sh('ip', ['link', 'set', this.hostVeth, 'master', this.bridge, 'up']);
    await this.exec(['ip', 'link', 'set', 'eth0', 'address', this.mac]);
    await this.exec(['ip', 'link', 'set', 'lo', 'up']);
    await this.exec(['ip', 'link', 'set', 'eth0', 'up']);
    if (this.cidr) await this.exec(['ip', 'addr', 'add', this.cidr, 'dev', 'eth0']);
  }

  exec(args: string[], opts: { reject?: boolean; timeout?: number; input?: string } = {}) {
    return sh('ip', ['netns', 'exec', this.ns, ...args], opts);
  }

  async destroy(): Promise<void> {
    await sh('ip', ['netns', 'del', this.ns], { reject: false });
    await sh('ip', ['link', 'del', this.hostVeth], { reject: false });
  }
}

/** Lines of `docker logs` (stdout and stderr together). */
export async function containerLogs(engineCli: string, container: string): Promise<string> {
  const r = await execa(engineCli, ['logs', container], { reject: false, all: true });
  return r.all ?? '';
}

/** Parses `cw-containerctl stop` output for the restart command it prints (single-quoted words allowed). */
export function restartCommand(stopOutput: string): string[] {
  const line = stopOutput.split('\n').find((l) => l.trim().startsWith('cw-containerctl start'));
  if (!line) throw new Error(`no restart command in:\n${stopOutput}`);
  const words = [...line.trim().matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2]!));
  return words.slice(1);
}

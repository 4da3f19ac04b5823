// Shared pieces of the slow suites: the real CLI, a real engine, network namespaces on a test bridge.
import { execa, type Options, type Result, type ResultPromise } from 'execa';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { SslVerify } from '../../src/tools/common/client/settings.js';

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

/**
 * The URL a test reaches the head node at `headIp` by with admin credentials (nginx, HTTPS on 443):
 * `headUrl('10.0.0.10')` is `https://10.0.0.10`. Only the nodes' anonymous routes use plain HTTP.
 */
export function headUrl(headIp: string): string {
  return `https://${headIp}`;
}

/** The directories tempDir made in this process, removed when it exits. */
const madeTempDirs: string[] = [];

/** The mount points at or below `dir` (/proc/mounts writes a space in a path as \040). */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

process.once('exit', () => {
  for (const dir of madeTempDirs) {
    // Never recurse into something still mounted there (a chroot's /dev or /proc): say so and keep it.
    const mounted = mountsUnder(dir);
    if (mounted.length > 0) {
      process.stderr.write(`kept ${dir}: still mounted there: ${mounted.join(', ')}\n`);
      continue;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A new directory under the system's temporary directory, removed when the suite's process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  madeTempDirs.push(dir);
  return dir;
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

/** The supervisor's view, through `cw-appliance health` (the report the HEALTHCHECK asks for). */
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

  /** The processes in the namespace (a server and the sessions it serves). */
  async pids(): Promise<number[]> {
    const r = await sh('ip', ['netns', 'pids', this.ns], { reject: false });
    return r.stdout.split('\n').filter((p) => /^\d+$/.test(p)).map(Number);
  }

  /** Ends every process in the namespace (a server and the sessions it forked, which keep its pipes open). */
  async endProcesses(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    for (const pid of await this.pids()) {
      try {
        process.kill(pid, signal);
      } catch {
        // Gone already.
      }
    }
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

/**
 * An admin on this host as the cw-* tools see one: a HOME with `~/.cw/settings.ini` and an ssh-agent
 * holding a fresh ed25519 key (`keyFile`, `keyFile.pub`) to register with add-admin.
 */
export class AdminSession {
  readonly agentSock: string;
  readonly keyFile: string;
  /** `client.sslverify`: `quiet` until `adopt` pins the head node's certificate. */
  sslVerify: SslVerify = 'quiet';
  #agentPid = 0;

  /** `extraSettings` adds lines to settings.ini, e.g. `{ 'modimg.workspace': dir }`. */
  constructor(
    readonly home: string,
    readonly baseUrl: string,
    readonly extraSettings: Record<string, string> = {},
    readonly user = 'alice',
  ) {
    this.agentSock = join(home, 'agent.sock');
    this.keyFile = join(home, 'id_ed25519');
  }

  async open(): Promise<void> {
    await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${this.user}@test`, '-f', this.keyFile]);
    const agent = await sh('ssh-agent', ['-a', this.agentSock]);
    this.#agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1] ?? 0);
    await execa('ssh-add', [this.keyFile], { env: { SSH_AUTH_SOCK: this.agentSock } });
    this.#writeSettings();
  }

  #writeSettings(): void {
    const extra = Object.entries(this.extraSettings).map(([k, v]) => `${k} = ${v}\n`).join('');
    mkdirSync(join(this.home, '.cw'), { recursive: true });
    writeFileSync(
      join(this.home, '.cw', 'settings.ini'),
      `[ClusterWare]\nclient.base_url = ${this.baseUrl}\nclient.authuser = ${this.user}\nclient.sslverify = ${this.sslVerify}\n${extra}`,
    );
  }

  /**
   * Takes the settings `cw-containerctl tool-config` proposes for the running appliance `container`, as an
   * admin following the README would: its base URL must be this session's, and its `client.sslverify`
   * (the certificate's pin) is used from now on.
   */
  async adopt(container: string): Promise<void> {
    const proposal = await ctl(['tool-config', '--name', container]);
    if (proposal.exitCode !== 0) throw new Error(proposal.all);
    const url = /^client\.base_url = (\S+)$/m.exec(proposal.stdout)?.[1];
    const verify = /^client\.sslverify = (\S+)$/m.exec(proposal.stdout)?.[1];
    if (url !== this.baseUrl) throw new Error(`tool-config proposes ${url}, expected ${this.baseUrl}:\n${proposal.stdout}`);
    if (!verify?.startsWith('sha256:')) throw new Error(`tool-config proposes no certificate pin:\n${proposal.stdout}`);
    this.sslVerify = verify as SslVerify;
    this.#writeSettings();
  }

  /** Runs `cw-NAME` from dist/ with only the admin's environment (HOME, SSH_AUTH_SOCK, PATH). */
  tool(name: string, args: string[], timeout = 120_000) {
    return execa('node', [join(repoRoot, 'dist/tools', name, 'main.js'), ...args], {
      reject: false,
      all: true,
      stdin: 'ignore',
      env: { HOME: this.home, SSH_AUTH_SOCK: this.agentSock, CI: 'true', PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
      extendEnv: false,
      timeout,
    });
  }

  close(): void {
    if (!this.#agentPid) return;
    try {
      process.kill(this.#agentPid, 'SIGTERM');
    } catch {
      // already gone
    }
    this.#agentPid = 0;
  }
}

/**
 * The head node the cluster suites talk to: a docker network on its own Linux bridge, the image loaded
 * from the tarball, the appliance started on that network at `headIp` (sshd on 22), `admin`'s key
 * added as admin `admin.user` and its tools configured as tool-config proposes (HTTPS, the certificate
 * pinned). Returns the loaded image reference.
 */
export async function startOnTestBridge(o: { name: string; net: string; subnet: string; headIp: string; storage: string; admin: AdminSession }): Promise<string> {
  await sh('docker', ['network', 'create', '--subnet', o.subnet, '-o', `com.docker.network.bridge.name=${o.net}`, o.net]);
  await o.admin.open();
  const load = await ctl(['img-load', imageTarball()]);
  const imageRef = /Loaded image: (\S+)/.exec(load.stdout)?.[1] ?? '';
  if (!imageRef) throw new Error(load.all);
  const start = await ctl(['start', o.storage, imageRef, '--name', o.name, '--network', o.net, '--ip', o.headIp, '--ssh-port', '22']);
  if (start.exitCode !== 0) throw new Error(start.all);
  const add = await ctl(['add-admin', o.admin.user, `@${o.admin.keyFile}.pub`, '--name', o.name]);
  if (add.exitCode !== 0) throw new Error(add.all);
  await o.admin.adopt(o.name);
  return imageRef;
}

/** Writes the udhcpc script that prints `LEASE <ip>` once bound; returns its path. */
export function writeLeaseScript(dir: string): string {
  const script = join(dir, 'udhcpc.sh');
  writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "LEASE $ip"\nexit 0\n');
  chmodSync(script, 0o755);
  return script;
}

/** One DHCP exchange (busybox udhcpc, `tries` DISCOVERs 1 s apart) from `host`: the address acked, or undefined. */
export async function dhcpLease(host: TestHost, script: string, tries = 1): Promise<string | undefined> {
  const r = await host.exec(['busybox', 'udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', String(tries), '-T', '1', '-s', script], {
    reject: false,
    timeout: 30_000,
  });
  return /^LEASE (\S+)/m.exec(r.stdout)?.[1];
}

/** Lazily unmounts everything mounted below `dir` (chroot mounts a failed test may leave). */
export async function unmountUnder(dir: string): Promise<void> {
  for (const m of mountsUnder(dir).reverse()) await sh('umount', ['--lazy', m], { reject: false });
}

/** Debian's ipxe-qemu NIC boot ROMs live outside qemu's data directory; without them SeaBIOS cannot PXE-boot. */
export const QEMU_ROM_DIRS = ['-L', '/usr/lib/ipxe/qemu', '-L', '/usr/share/qemu'];

/**
 * A diskless qemu VM (TCG, BIOS) on tap `tap` that can only boot from the network, its serial console
 * in `log`. `reboot: false` ends qemu when the guest reboots (an initramfs that gives up).
 */
export class PxeVm {
  #proc: ResultPromise | undefined;
  #exited = '';

  constructor(
    readonly tap: string,
    readonly mac: string,
    readonly log: string,
  ) {}

  start(options: { reboot?: boolean } = {}): void {
    rmSync(this.log, { force: true });
    this.#exited = '';
    const args = [...QEMU_ROM_DIRS, '-accel', 'tcg', '-m', '1536', '-smp', '2', '-nographic', '-display', 'none', '-monitor', 'none', '-serial', `file:${this.log}`];
    if (options.reboot === false) args.push('-no-reboot');
    args.push('-netdev', `tap,id=n0,ifname=${this.tap},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n0,mac=${this.mac},bootindex=1`, '-boot', 'n');
    const proc = execa('qemu-system-x86_64', args, { reject: false, stdin: 'ignore', all: true });
    this.#proc = proc;
    void proc.then((r) => (this.#exited = `qemu exited (${String(r.exitCode)}): ${r.all ?? ''}`));
  }

  serial(): string {
    try {
      return readFileSync(this.log, 'latin1');
    } catch {
      return '';
    }
  }

  /** Waits for `re` on the serial console; a VM that died ends the wait at once, with its console. */
  async waitForSerial(re: RegExp, timeoutMs: number): Promise<number> {
    const { ms } = await waitFor(async () => (this.#exited ? 'exited' : re.test(this.serial())), timeoutMs, 1000).catch((err: Error) => {
      throw new Error(`${err.message} waiting for ${String(re)}\n--- serial ---\n${this.serial().slice(-6000)}`);
    });
    if (this.#exited) throw new Error(`${this.#exited}\n--- serial ---\n${this.serial().slice(-6000)}`);
    return ms;
  }

  async stop(): Promise<void> {
    if (!this.#proc) return;
    this.#proc.kill('SIGKILL');
    await this.#proc.catch(() => undefined);
    this.#proc = undefined;
  }
}

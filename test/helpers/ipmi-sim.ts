// A real IPMI 2.0 LAN BMC for tests: OpenIPMI's ipmi_sim (Debian openipmi), on a loopback address or
// inside a network namespace. Its "machine" is a `sleep` that ipmi_sim starts on power on and kills on
// power off, so the power state is ipmi_sim's own, and the process shows that it really changed. A test
// may give a real machine instead: a qemu VM whose `ipmi-bmc-extern` device connects back to ipmi_sim's
// VM channel (IpmiSim.qemuArgs), so that ipmi_sim manages the VM's power as a BMC manages a board's.
import { execa, type ResultPromise } from 'execa';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface IpmiSimOptions {
  /** Directory for lan.conf, the emu file and the state (made if missing). */
  dir: string;
  addr: string;
  port?: number;
  user?: string;
  password: string;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /**
   * What power on starts (ipmi_sim's `startcmd`), as argv without spaces or quotes in any argument;
   * IpmiSim.MACHINE unless given, e.g. `['qemu-system-x86_64', ...IpmiSim.qemuArgs(vm), ...]`.
   */
  machine?: string[];
  /** Where ipmi_sim listens for the VM's IPMI channel (`serial 15 ADDR PORT codec VM`); `addr`:9002 unless given. */
  vm?: { addr: string; port: number };
  /** Serial-over-LAN to this device: `tcp:ADDR:PORT` (ipmi_sim connects to it), `telnet:…` or a tty path. */
  sol?: string;
}

/** Every ipmi_sim started by this process, for `stopAllIpmiSims` (also on a crash). */
const running = new Set<IpmiSim>();

export class IpmiSim {
  readonly addr: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  #proc: ResultPromise | undefined;

  constructor(readonly options: IpmiSimOptions) {
    this.addr = options.addr;
    this.port = options.port ?? 623;
    this.user = options.user ?? 'admin';
    this.password = options.password;
  }

  /** The machine this BMC powers unless told otherwise: `/bin/sleep 86400`, ipmi_sim's child while on. */
  static readonly MACHINE = ['/bin/sleep', '86400'];

  /**
   * The qemu arguments that make a VM this BMC's board: a KCS interface whose BMC is ipmi_sim, reached
   * over a socket to its VM channel `vm` (qemu reconnects every 10 s until ipmi_sim listens), e.g.
   * `qemuArgs({ addr: '127.0.0.1', port: 9002 })` is `-chardev socket,id=ipmi0,host=127.0.0.1,port=9002,
   * reconnect=10 -device ipmi-bmc-extern,id=bmc0,chardev=ipmi0 -device isa-ipmi-kcs,bmc=bmc0`.
   */
  static qemuArgs(vm: { addr: string; port: number }): string[] {
    return [
      '-chardev', `socket,id=ipmi0,host=${vm.addr},port=${vm.port},reconnect=10`,
      '-device', 'ipmi-bmc-extern,id=bmc0,chardev=ipmi0',
      '-device', 'isa-ipmi-kcs,bmc=bmc0',
    ];
  }

  /** The argv power on starts: options.machine or MACHINE. */
  get machine(): string[] {
    return this.options.machine ?? IpmiSim.MACHINE;
  }

  /** ipmi_sim's VM channel: options.vm or `addr`:9002. */
  get vm(): { addr: string; port: number } {
    return this.options.vm ?? { addr: this.addr, port: 9002 };
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** Writes the configuration and starts ipmi_sim; resolves once it answers a power status. */
  async start(): Promise<void> {
    const { dir } = this.options;
    mkdirSync(join(dir, 'state'), { recursive: true });
    const q = (s: string) => `"${s.replace(/["\\]/g, '')}"`;
    writeFileSync(
      join(dir, 'lan.conf'),
      [
        `name ${q(`sim-${this.addr}`)}`,
        'set_working_mc 0x20',
        '  startlan 1',
        `    addr ${this.addr} ${this.port}`,
        '    priv_limit admin',
        '    allowed_auths_callback none md2 md5 straight',
        '    allowed_auths_user none md2 md5 straight',
        '    allowed_auths_operator none md2 md5 straight',
        '    allowed_auths_admin none md2 md5 straight',
        '    guid a123456789abcdefa123456789abcdef',
        '  endlan',
        // The VM channel must exist for ipmi_sim's power control to manage startcmd; only a qemu VM
        // (qemuArgs) connects to it.
        `  serial 15 ${this.vm.addr} ${this.vm.port} codec VM`,
        `  startcmd ${q(this.machine.join(' '))}`,
        '  startnow false',
        ...(this.options.sol ? [`  sol ${q(this.options.sol)} 115200`] : []),
        // With no VM connected ipmi_sim skips the graceful request and sends SIGTERM (0 would mean never);
        // a connected VM gets a second for it (power off is a hard off here).
        '  poweroff_wait 1',
        '  kill_wait 1',
        `  user 2 true ${q(this.user)} ${q(this.password)} admin 10 none md2 md5 straight`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'sim.emu'),
      'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n',
    );
    const argv = ['ipmi_sim', '-c', join(dir, 'lan.conf'), '-f', join(dir, 'sim.emu'), '-n', '-s', join(dir, 'state')];
    const [file, ...args] = this.options.netns ? ['ip', 'netns', 'exec', this.options.netns, ...argv] : argv;
    // Its own process group, so that stop() also ends the machine it started.
    this.#proc = execa(file as string, args, { detached: true, reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' });
    running.add(this);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await this.ipmitool(['chassis', 'power', 'status'], this.password, ['-N', '1', '-R', '1']);
      if (r.exitCode === 0) return;
      if (Date.now() > deadline || this.#proc.exitCode !== null) throw new Error(`ipmi_sim on ${this.addr}:${this.port} did not start: ${r.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Runs ipmitool against this BMC as a test's own check (password through IPMI_PASSWORD). */
  ipmitool(args: string[], password = this.password, extra: string[] = []) {
    const base = ['-I', 'lanplus', '-C', '3', ...extra, '-H', this.addr, '-p', String(this.port), '-U', this.user, '-E', ...args];
    const [file, ...rest] = this.options.netns ? ['ip', 'netns', 'exec', this.options.netns, 'ipmitool', ...base] : ['ipmitool', ...base];
    return execa(file as string, rest, { env: { IPMI_PASSWORD: password }, reject: false, stdin: 'ignore', timeout: 30_000 });
  }

  /** Whether the machine runs: a child of this ipmi_sim with the machine's command line. */
  machineRunning(): boolean {
    const pid = this.pid;
    if (pid === undefined) return false;
    for (const entry of readdirSync('/proc')) {
      if (!/^[0-9]+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid !== pid) continue;
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
        if (cmdline.join(' ') === this.machine.join(' ')) return true;
      } catch {
        // The process ended while we looked.
      }
    }
    return false;
  }

  /** Kills ipmi_sim and its machine (the whole process group) and waits for ipmi_sim to exit. */
  async stop(): Promise<void> {
    const proc = this.#proc;
    running.delete(this);
    if (!proc?.pid) return;
    try {
      process.kill(-proc.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    await proc;
    this.#proc = undefined;
  }
}

/** Polls `probe` every 100 ms until it returns true; false when `ms` passed first. */
export async function eventually(probe: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Stops every ipmi_sim this process started. */
export async function stopAllIpmiSims(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop()));
}

// A test process that dies still takes its BMCs along.
process.once('exit', () => {
  for (const sim of running) {
    const pid = sim.pid;
    if (pid) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
});

/** Every `/proc/PID/cmdline` of this machine (as one string per process), for secret checks. */
export function allCommandLines(): string[] {
  const lines: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      lines.push(readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' '));
    } catch {
      // Ended while we looked.
    }
  }
  return lines;
}

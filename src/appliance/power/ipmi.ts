// IPMI over LAN. On the appliance, an RMCP+ session in process (rmcp/session.ts: a few datagrams per
// node, no process); on a relay host reached over ssh, `ipmitool -I lanplus` there. The password never
// reaches an argv: on a relay it is stdin for `-f /dev/stdin` (ssh does not forward the environment);
// the appliance's own ipmitool (serial consoles, and the power baseline) takes it from `IPMI_PASSWORD`.
import { firstLine, type Command, type CommandRunner } from './command.js';
import { PRIVILEGE } from './rmcp/packet.js';
import { COMMANDS, RmcpSession, type SessionTarget } from './rmcp/session.js';
import { sshArgv, type SshIdentity } from './ssh.js';
import { describeTarget, type IpmiTarget } from './uri.js';
import type { PowerAction, PowerPlugin, PowerState } from './types.js';

/** ipmitool's `chassis power` word for each action. */
const IPMI_VERBS: Partial<Record<PowerAction, string>> = {
  status: 'status',
  on: 'on',
  off: 'off',
  soft: 'soft',
  cycle: 'cycle',
  reset: 'reset',
};

/** The Chassis Control value ipmitool sends for each of its `chassis power` words (IPMI 2.0 §28.3). */
export const CHASSIS_CONTROL: Partial<Record<PowerAction, number>> = {
  off: 0x00,
  on: 0x01,
  cycle: 0x02,
  reset: 0x03,
  soft: 0x05, // ACPI soft shutdown
};

/**
 * How the appliance's own ipmitool opens a session with a BMC: lanplus with cipher suite 3 (HMAC-SHA1,
 * AES-128, the one every IPMI 2.0 BMC offers), `options` (retries, ...), the BMC, and the password from
 * `IPMI_PASSWORD` (`-E`), never the argv. Power commands and serial consoles log in alike.
 */
export function lanplusLogin(target: IpmiTarget, options: readonly string[] = []): string[] {
  return ['-I', 'lanplus', '-C', '3', ...options, '-H', target.bmc, '-p', String(target.port ?? 623), '-U', target.user, '-E'];
}

/**
 * The program and arguments of one `chassis power VERB` for `target`. `deadlineS` sets ipmitool's own
 * retries so that it keeps trying until the node's deadline, which then reports the BMC as silent.
 * Example (local): `ipmitool -I lanplus -C 3 -N 1 -R 11 -H 10.1.15.1 -p 623 -U admin -E chassis power status`
 * with `IPMI_PASSWORD` in `env`.
 */
export function ipmitoolCommand(target: IpmiTarget, action: PowerAction, deadlineS: number, identity: SshIdentity): Command {
  const verb = IPMI_VERBS[action];
  if (verb === undefined) throw new Error(`ipmi: no chassis power command for ${action}`);
  const retry = ['-N', '1', '-R', String(Math.max(1, Math.ceil(deadlineS)) + 1)];
  if (!target.relay) {
    return { file: 'ipmitool', args: [...lanplusLogin(target, retry), 'chassis', 'power', verb], env: { IPMI_PASSWORD: target.password } };
  }
  // On a relay the password comes on stdin (ssh does not forward the environment), and the BMC is on its
  // default port (parsePowerTarget refuses a port with a relay).
  const remote = ['ipmitool', '-I', 'lanplus', '-C', '3', ...retry, '-H', target.bmc, '-U', target.user, '-f', '/dev/stdin', 'chassis', 'power', verb];
  return { file: 'ssh', args: sshArgv(target.relay, remote, identity, deadlineS), input: `${target.password}\n` };
}

/** `Chassis Power is on` -> `on`; undefined for anything else. */
export function parseIpmiStatus(stdout: string): PowerState | undefined {
  const m = /Chassis Power is (on|off)/i.exec(stdout);
  return m ? (m[1]?.toLowerCase() as PowerState) : undefined;
}

/** A one-line reason for a failed ipmitool (or ssh to its relay). */
export function ipmiFailure(target: IpmiTarget, exitCode: number, stderr: string): string {
  const where = describeTarget(target);
  if (target.relay && exitCode === 255) return `cannot reach relay ${target.relay.host} over ssh: ${firstLine(stderr, 'ssh failed')}`;
  if (target.relay && exitCode === 127) return `ipmitool is not installed on relay ${target.relay.host}`;
  const line = firstLine(stderr, `ipmitool exited with status ${exitCode}`).replace(/^Error:\s*/, '');
  if (/Unable to establish IPMI v2/i.test(line)) return `${where} refused the session (wrong user or password?): ${line}`;
  return `${where}: ${line}`;
}

/** The IPMI plugin: in process for a BMC the appliance reaches, ipmitool over ssh through a relay. */
export function ipmiPlugin(target: IpmiTarget, run: CommandRunner, identity: SshIdentity): PowerPlugin {
  return target.relay ? ipmitoolPlugin(target, run, identity) : rmcpPlugin(target);
}

/**
 * Power through an in-process RMCP+ session: status is Get Chassis Status's power bit; an action raises
 * the session to Administrator, then sends Chassis Control.
 */
export function rmcpPlugin(target: IpmiTarget): PowerPlugin {
  const bmc: SessionTarget = { host: target.bmc, port: target.port ?? 623, user: target.user, password: target.password, where: describeTarget(target) };
  const options = (signal: AbortSignal, deadlineS: number) => ({ signal, deadlineMs: deadlineS * 1000 });
  return {
    async status(signal, deadlineS) {
      const response = await RmcpSession.run(bmc, options(signal, deadlineS), (s) => s.request(COMMANDS.getChassisStatus));
      const state = response.data[0];
      if (state === undefined) throw new Error(`${bmc.where} answered Get Chassis Status without a power state`);
      return state & 0x01 ? 'on' : 'off';
    },
    async act(action, signal, deadlineS) {
      const control = CHASSIS_CONTROL[action];
      if (control === undefined) throw new Error(`power ${action} is not supported through IPMI`);
      await RmcpSession.run(bmc, options(signal, deadlineS), async (s) => {
        await s.request(COMMANDS.setSessionPrivilege(PRIVILEGE.administrator));
        await s.request(COMMANDS.chassisControl(control));
      });
    },
  };
}

/** Power through one ipmitool process per call (relays; locally the baseline the benchmark compares with). */
export function ipmitoolPlugin(target: IpmiTarget, run: CommandRunner, identity: SshIdentity): PowerPlugin {
  const call = async (action: PowerAction, signal: AbortSignal, deadlineS: number): Promise<string> => {
    const result = await run(ipmitoolCommand(target, action, deadlineS, identity), signal);
    if (result.exitCode !== 0) throw new Error(ipmiFailure(target, result.exitCode, result.stderr));
    return result.stdout;
  };
  return {
    async status(signal, deadlineS) {
      const out = await call('status', signal, deadlineS);
      const state = parseIpmiStatus(out);
      if (!state) throw new Error(`${describeTarget(target)} answered "${firstLine(out, 'nothing')}" to power status`);
      return state;
    },
    async act(action, signal, deadlineS) {
      if (IPMI_VERBS[action] === undefined) throw new Error(`power ${action} is not supported through IPMI`);
      await call(action, signal, deadlineS);
    },
  };
}

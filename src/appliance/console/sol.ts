// The ipmitool commands of a serial-over-LAN console. The password is only ever `IPMI_PASSWORD` for `-E`.
import type { Command } from '../power/command.js';
import { lanplusLogin } from '../power/ipmi.js';
import type { IpmiTarget } from '../power/uri.js';

/**
 * `ipmitool -I lanplus -C 3 -H BMC -p PORT -U USER -E sol activate|deactivate` with the password in `env`.
 * Example: `solCommand({ scheme: 'ipmi', bmc: '10.1.15.1', user: 'admin', password: 'pw' }, 'activate')`
 * -> `{ file: 'ipmitool', args: [..., '-H', '10.1.15.1', '-p', '623', '-U', 'admin', '-E', 'sol', 'activate'], env: { IPMI_PASSWORD: 'pw' } }`.
 */
export function solCommand(target: IpmiTarget, verb: 'activate' | 'deactivate'): Command {
  if (target.relay) throw new Error('serial consoles through an ipmi relay are not supported');
  return { file: 'ipmitool', args: [...lanplusLogin(target), 'sol', verb], env: { IPMI_PASSWORD: target.password } };
}

/**
 * The worker's `sol activate`: through `stdbuf -o0`, because ipmitool writes the console through stdio,
 * which holds output back in a buffer when stdout is a pipe rather than a terminal.
 */
export function solLogCommand(target: IpmiTarget): Command {
  const activate = solCommand(target, 'activate');
  return { ...activate, file: 'stdbuf', args: ['-o0', activate.file, ...activate.args] };
}

/** Lines ipmitool writes to stderr that say nothing about why a session ended (stdin is not a terminal). */
export function isIpmitoolNoise(line: string): boolean {
  return /^tcgetattr: |^tcsetattr: |^Info: SOL parameter /.test(line.trim());
}

/** ipmitool's answer when another session holds the node's SOL payload (a stale one, or another client). */
export function isSolBusy(stderr: string): boolean {
  return /payload already (active|in use)|SOL payload already/i.test(stderr);
}

/** ipmitool's own status lines on the console stream, which are not the node's output. */
export function isIpmitoolBanner(line: string): boolean {
  return /^\[(SOL Session operational|SOL Session closed|terminated ipmitool|remote side)/i.test(line.trim());
}

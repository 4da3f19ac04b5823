// `cw-appliance console NODE`: the node's serial-over-LAN console on this terminal, run by the appliance
// (admins reach it with `ssh -t -p SSH_PORT root@HEAD cw-appliance console n0`, which `cw-nodectl -i n0
// console` does). ipmitool's escape `~.` at the start of a line ends it. While it runs, the node's console
// log worker steps aside (a BMC gives one SOL session at a time) and resumes when it ends.
import { execa } from 'execa';
import { ExitError, errorMessage } from '../../../lib/errors.js';
import { effectivePowerUri } from '../../api/routes/power.js';
import { consoleHoldDir, holdConsole } from '../../console/hold.js';
import { solCommand } from '../../console/sol.js';
import { execaRunner, type Command, type CommandRunner } from '../../power/command.js';
import { describeTarget, parsePowerTarget, PowerUriError } from '../../power/uri.js';
import { withStore, type CommandContext } from '../context.js';

/** Runs a command on this terminal (stdin, stdout and stderr inherited); resolves with its exit status. */
export type TerminalRunner = (command: Command) => Promise<number>;

const onTerminal: TerminalRunner = async (command) => {
  const result = await execa(command.file, command.args, { stdio: 'inherit', env: command.env ?? {}, reject: false });
  if ((result as { code?: unknown }).code === 'ENOENT') throw new ExitError(`${command.file} is not installed on the head node`);
  return typeof result.exitCode === 'number' ? result.exitCode : 1;
};

export interface ConsoleDeps {
  /** Runs `sol deactivate` (default execa). */
  run?: CommandRunner;
  /** Runs the interactive `sol activate` (default: on this terminal). */
  terminal?: TerminalRunner;
  /** Where holds are left (default /run/cw/consoles). */
  holdDir?: string;
  /** Time the log worker gets to end its own session (default 1.5 s). */
  handOverMs?: number;
  /** Messages to the user (default stderr). */
  say?: (line: string) => void;
}

export async function consoleAttach(ctx: CommandContext, node: string, deps: ConsoleDeps = {}): Promise<void> {
  const say = deps.say ?? ((line: string) => void process.stderr.write(`${line}\r\n`));
  const uri = await withStore(ctx, async (store) => {
    const found = await store.getNode(node);
    if (!found) throw new ExitError(`no such node: ${node}`);
    return effectivePowerUri(store, found);
  });
  if (!uri) throw new ExitError(`${node} has no power_uri (set one: cw-nodectl -i ${node} update power_uri=ipmi:///USER:PASSWORD@BMC)`);
  let target;
  try {
    target = parsePowerTarget(uri).target;
  } catch (err) {
    throw new ExitError(err instanceof PowerUriError ? `${node}: power_uri: ${err.message}` : `${node}: power_uri cannot be used`);
  }
  if (target.scheme !== 'ipmi' || target.relay) throw new ExitError(`${node}: serial consoles need an ipmi:/// power_uri (IPMI serial-over-LAN from the appliance)`);
  let release: () => Promise<void>;
  try {
    release = await holdConsole(deps.holdDir ?? consoleHoldDir(ctx.env), found(node));
  } catch (err) {
    throw new ExitError(errorMessage(err));
  }
  const run = deps.run ?? execaRunner;
  const deactivate = async () => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 15_000);
    try {
      await run(solCommand(target, 'deactivate'), controller.signal).catch(() => undefined);
    } finally {
      clearTimeout(timer);
    }
  };
  try {
    // The log worker gives up its session within a second of seeing the hold; a stale one is ended here.
    await new Promise((resolve) => setTimeout(resolve, deps.handOverMs ?? 1500));
    await deactivate();
    say(`[${node}: serial console of ${describeTarget(target)}; type ~. at the start of a line to leave, ~? for help]`);
    const status = await (deps.terminal ?? onTerminal)(solCommand(target, 'activate'));
    if (status !== 0) throw new ExitError(`${node}: ipmitool sol activate ended with status ${status}`, status);
  } finally {
    await release();
  }
}

/** Node names go into a file name: only the checked form. */
function found(node: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(node) || node.includes('..')) throw new ExitError(`not a node name: ${node}`);
  return node;
}

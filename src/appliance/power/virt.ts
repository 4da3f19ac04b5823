// Virtual nodes: libvirt domains (virsh) and VirtualBox VMs (VBoxManage), on the appliance or over ssh on
// the hypervisor host. Neither program is in the appliance image; over ssh they run where they are.
import { firstLine, type Command, type CommandRunner } from './command.js';
import { sshArgv, type SshIdentity } from './ssh.js';
import { describeTarget, type LibvirtTarget, type SshHost, type VboxTarget } from './uri.js';
import type { PowerAction, PowerPlugin, PowerState } from './types.js';

/** The argv (program first) of each step of an action; `cycle` is two steps. */
export function virshSteps(domain: string, action: PowerAction): string[][] | undefined {
  const virsh = (...words: string[]) => ['virsh', '--connect', 'qemu:///system', ...words, domain];
  switch (action) {
    case 'status':
      return [virsh('domstate')];
    case 'on':
      return [virsh('start')];
    case 'off':
      return [virsh('destroy')];
    case 'soft':
      return [virsh('shutdown')];
    case 'restart':
      return [virsh('reboot')];
    case 'reset':
      return [virsh('reset')];
    case 'cycle':
      return [virsh('destroy'), virsh('start')];
  }
}

export function vboxSteps(vm: string, action: PowerAction): string[][] | undefined {
  switch (action) {
    case 'status':
      return [['VBoxManage', 'showvminfo', vm, '--machinereadable']];
    case 'on':
      return [['VBoxManage', 'startvm', vm, '--type', 'headless']];
    case 'off':
      return [['VBoxManage', 'controlvm', vm, 'poweroff']];
    case 'soft':
      return [['VBoxManage', 'controlvm', vm, 'acpipowerbutton']];
    case 'reset':
      return [['VBoxManage', 'controlvm', vm, 'reset']];
    case 'cycle':
      return [
        ['VBoxManage', 'controlvm', vm, 'poweroff'],
        ['VBoxManage', 'startvm', vm, '--type', 'headless'],
      ];
    case 'restart':
      return undefined;
  }
}

/** A step as a command: the argv itself, or ssh running it on `host`. */
export function stepCommand(step: readonly string[], host: SshHost | undefined, identity: SshIdentity, deadlineS: number): Command {
  if (!host) return { file: step[0] as string, args: step.slice(1) };
  return { file: 'ssh', args: sshArgv(host, step, identity, deadlineS) };
}

/** `virsh domstate`: `running`, `paused`, `in shutdown`, `pmsuspended` are on; `shut off`, `crashed` off. */
export function parseVirshState(stdout: string): PowerState | undefined {
  const state = stdout.trim().split('\n')[0]?.trim() ?? '';
  if (['running', 'paused', 'in shutdown', 'blocked', 'idle', 'pmsuspended'].includes(state)) return 'on';
  if (['shut off', 'crashed'].includes(state)) return 'off';
  return undefined;
}

/** `VMState="running"` of `showvminfo --machinereadable`. */
export function parseVboxState(stdout: string): PowerState | undefined {
  const m = /^VMState="([^"]*)"/m.exec(stdout);
  if (!m) return undefined;
  return ['running', 'paused', 'stuck', 'starting', 'stopping'].includes(m[1] as string) ? 'on' : 'off';
}

function stepsPlugin(
  where: string,
  host: SshHost | undefined,
  steps: (action: PowerAction) => string[][] | undefined,
  parse: (stdout: string) => PowerState | undefined,
  run: CommandRunner,
  identity: SshIdentity,
): PowerPlugin {
  const exec = async (action: PowerAction, signal: AbortSignal, deadlineS: number): Promise<string> => {
    const list = steps(action);
    if (!list) throw new Error(`power ${action} is not supported by ${where}`);
    let out = '';
    for (const step of list) {
      const result = await run(stepCommand(step, host, identity, deadlineS), signal);
      if (result.exitCode !== 0) {
        if (host && result.exitCode === 255) throw new Error(`cannot reach ${host.host} over ssh: ${firstLine(result.stderr, 'ssh failed')}`);
        throw new Error(`${where}: ${firstLine(result.stderr, `${step[0]} exited with status ${result.exitCode}`)}`);
      }
      out = result.stdout;
    }
    return out;
  };
  return {
    async status(signal, deadlineS) {
      const out = await exec('status', signal, deadlineS);
      const state = parse(out);
      if (!state) throw new Error(`${where} answered "${firstLine(out, 'nothing')}" to a state query`);
      return state;
    },
    async act(action, signal, deadlineS) {
      await exec(action, signal, deadlineS);
    },
  };
}

export function libvirtPlugin(target: LibvirtTarget, run: CommandRunner, identity: SshIdentity): PowerPlugin {
  return stepsPlugin(describeTarget(target), target.host, (a) => virshSteps(target.domain, a), parseVirshState, run, identity);
}

export function vboxPlugin(target: VboxTarget, run: CommandRunner, identity: SshIdentity): PowerPlugin {
  return stepsPlugin(describeTarget(target), target.host, (a) => vboxSteps(target.vm, a), parseVboxState, run, identity);
}

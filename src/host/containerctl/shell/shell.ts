import { execa } from 'execa';
import { ExitError } from '../../../lib/errors.js';
import { findRunningAppliance } from '../appliance.js';
import type { CommandContext } from '../context.js';
import type { EngineIdentity } from '../engine/identify.js';

export interface ShellOptions {
  name?: string | undefined;
  /** Command to run instead of an interactive bash. */
  command?: string[] | undefined;
}

export interface ShellDeps {
  /** Whether stdin is a terminal (decides `-t`). */
  interactive?: boolean;
  uid?: number;
  run?: (file: string, args: string[]) => Promise<number>;
}

/**
 * The engine CLI invocation matching the engine we talk to: docker with `-H` for the same endpoint;
 * podman locally when it is root's rootful Podman, else `--remote --url` for the same socket.
 */
export function shellInvocation(identity: EngineIdentity, container: string, command: string[], tty: boolean, uid: number): { file: string; args: string[] } {
  const endpoint = identity.endpoint;
  const url = endpoint.transport === 'unix' ? `unix://${endpoint.socketPath}` : `tcp://${endpoint.host}:${endpoint.port}`;
  const execArgs = ['exec', '-i', ...(tty ? ['-t'] : []), container, ...command];
  if (identity.kind === 'podman') {
    const local = endpoint.source === 'podman-rootful' && uid === 0;
    return { file: 'podman', args: local ? execArgs : ['--remote', '--url', url, ...execArgs] };
  }
  const tlsArgs = endpoint.transport === 'tcp' && endpoint.tls ? ['--tlsverify'] : [];
  return { file: 'docker', args: ['-H', url, ...tlsArgs, ...execArgs] };
}

async function runInherited(file: string, args: string[]): Promise<number> {
  try {
    const result = await execa(file, args, { stdio: 'inherit', reject: false });
    if (result.failed && result.exitCode === undefined) throw result;
    return result.exitCode ?? 1;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') {
      throw new ExitError(`the ${file} command is not on PATH; "cw-containerctl shell" runs "${file} exec -it CONTAINER /bin/bash"`);
    }
    throw err;
  }
}

/** `cw-containerctl shell [-- CMD...]`: an interactive shell (or a command) in the running appliance; returns its exit code. */
export async function shell(options: ShellOptions, ctx: CommandContext, deps: ShellDeps = {}): Promise<number> {
  const engine = await ctx.engine();
  const container = await findRunningAppliance(engine, options.name);
  const command = options.command && options.command.length > 0 ? options.command : ['/bin/bash'];
  const interactive = deps.interactive ?? Boolean(process.stdin.isTTY);
  const { file, args } = shellInvocation(engine.identity, container.name, command, interactive, deps.uid ?? process.getuid?.() ?? 0);
  return (deps.run ?? runInherited)(file, args);
}

// Running a plugin's program: always an argv (execa, no shell), secrets only in the environment or on
// stdin, and the node's deadline as an AbortSignal that kills the process when it fires.
import { execa } from 'execa';

/** A program run by a plugin. */
export interface Command {
  file: string;
  args: string[];
  /** Added to the appliance's environment (e.g. `IPMI_PASSWORD` for `ipmitool -E`). */
  env?: Record<string, string>;
  /** Written to stdin, then stdin is closed (e.g. a password for `ipmitool -f /dev/stdin` on a relay). */
  input?: string;
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with DeadlineError when `signal` fires first, CommandError when it cannot start. */
export type CommandRunner = (command: Command, signal: AbortSignal) => Promise<CommandResult>;

/** The node's deadline passed before the plugin had its answer. */
export class DeadlineError extends Error {
  constructor() {
    super('deadline passed');
    this.name = 'DeadlineError';
  }
}

/** A program that could not be started (not installed, ...). */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

/** Output kept from one command; plugins read a line or two. */
const MAX_OUTPUT = 1024 * 1024;

/** The real runner: execa with an argument array; on abort TERM, then KILL after 1 s. */
export const execaRunner: CommandRunner = async (command, signal) => {
  if (signal.aborted) throw new DeadlineError();
  const result = await execa(command.file, command.args, {
    env: command.env ?? {},
    ...(command.input === undefined ? { stdin: 'ignore' as const } : { input: command.input }),
    cancelSignal: signal,
    forceKillAfterDelay: 1000,
    reject: false,
    maxBuffer: MAX_OUTPUT,
    encoding: 'utf8',
  });
  if (result.isCanceled || signal.aborted) throw new DeadlineError();
  if (typeof result.exitCode !== 'number') {
    // Not started (ENOENT) or killed by a signal: say which, without the command line.
    const code = (result as { code?: unknown }).code;
    if (code === 'ENOENT') throw new CommandError(`${command.file} is not installed on the head node`);
    throw new CommandError(`${command.file} ${result.signal ? `was killed by ${result.signal}` : 'could not be run'}`);
  }
  return { exitCode: result.exitCode, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
};

/** The first meaningful line of a program's error output, clipped, with control characters dropped. */
export function firstLine(text: string, fallback: string): string {
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[\p{C}]/gu, '').trim();
    if (line !== '') return line.length > 200 ? `${line.slice(0, 197)}...` : line;
  }
  return fallback;
}

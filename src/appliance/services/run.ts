import { execa } from 'execa';
import type { CommandRunner } from './context.js';

/** Runs a helper to completion (60 s at most), never throwing for a non-zero exit or a missing binary. */
export const runCommandLine: CommandRunner = async (command, args) => {
  const result = await execa(command, [...args], { reject: false, all: true, stdin: 'ignore', timeout: 60_000 });
  const output = typeof result.all === 'string' ? result.all : '';
  if (result.exitCode === undefined) return { exitCode: 127, output: output || result.shortMessage || `${command} failed` };
  return { exitCode: result.exitCode, output };
};

/** The last few non-empty lines of a helper's output, joined for a one-line log. */
export function tail(output: string, count = 3): string {
  return output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-count)
    .join(' | ');
}

import { ExitError } from '../../../lib/errors.js';
import { hashPassword } from '../../../lib/password.js';
import { findRunningAppliance, runAppliance } from '../appliance.js';
import type { CommandContext, Output } from '../context.js';
import { withNewline } from '../format.js';

export interface RootPassOptions {
  name?: string | undefined;
}

/** A terminal or a pipe. */
export interface PasswordInput extends NodeJS.ReadableStream {
  isTTY?: boolean | undefined;
  setRawMode?: (mode: boolean) => unknown;
}

export interface RootPassDeps {
  stdin?: PasswordInput;
}

/**
 * The password from piped input: the first line; a second line, when present, must repeat it.
 * Trailing empty lines are ignored; `\r\n` line ends are accepted.
 */
export function passwordFromLines(text: string): string {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  const [first, second] = lines;
  if (!first) throw new ExitError('empty password, nothing changed');
  if (second !== undefined && second !== first) throw new ExitError('passwords do not match, nothing changed');
  return first;
}

/** Reads piped input up to its end or its second line, whichever comes first. */
export async function readPipedLines(input: NodeJS.ReadableStream, maxLines = 2): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (text.split('\n').length > maxLines) break;
    if (text.length > 1 << 16) throw new ExitError('password input is too long');
  }
  return text;
}

/** Prompts on the terminal and reads one line without echoing it. */
export function readHidden(prompt: string, input: PasswordInput, output: Output): Promise<string> {
  return new Promise((resolve, reject) => {
    let value = '';
    output.write(prompt);
    input.setRawMode?.(true);
    const finish = (err?: ExitError) => {
      input.removeListener('data', onData);
      input.setRawMode?.(false);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new ExitError('cancelled, nothing changed', 130));
        if (ch === '\u0004') return value ? finish() : finish(new ExitError('empty password, nothing changed'));
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else if (ch >= ' ') value += ch;
      }
    };
    input.on('data', onData);
    input.resume();
  });
}

/** Asks twice on a terminal; reads lines from a pipe. */
export async function readNewPassword(input: PasswordInput, prompts: Output): Promise<string> {
  if (!input.isTTY) return passwordFromLines(await readPipedLines(input));
  const first = await readHidden('New root password: ', input, prompts);
  if (!first) throw new ExitError('empty password, nothing changed');
  const second = await readHidden('Retype new root password: ', input, prompts);
  if (second !== first) throw new ExitError('passwords do not match, nothing changed');
  return first;
}

/**
 * `cw-containerctl root-pass`: sets the appliance's root password. The password is hashed here, so
 * only the hash reaches the container; prints the appliance's answer (`Root password set`).
 */
export async function rootPass(options: RootPassOptions, ctx: CommandContext, deps: RootPassDeps = {}): Promise<void> {
  const engine = await ctx.engine();
  const container = await findRunningAppliance(engine, options.name);
  const password = await readNewPassword(deps.stdin ?? process.stdin, ctx.stderr);
  const hash = await hashPassword(password);
  const result = await runAppliance(engine, container, ['root-pass'], [`CW_ROOT_HASH=${hash}`]);
  ctx.stdout.write(withNewline(result.stdout));
}

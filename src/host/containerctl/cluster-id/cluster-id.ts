import { homedir } from 'node:os';
import { ExitError } from '../../../lib/errors.js';
import { readLocalText } from '../../../lib/local-files.js';
import { findRunningAppliance, runAppliance } from '../appliance.js';
import type { CommandContext } from '../context.js';
import { withNewline } from '../format.js';

export interface ClusterIdOptions {
  /**
   * Where the token comes from: `-` (stdin), `@FILE`, or the token itself (visible in the process list,
   * so accepted with a warning). Without it, a piped stdin holds the token; otherwise the current one is
   * printed.
   */
  token?: string | undefined;
  name?: string | undefined;
}

/** A pipe or a terminal. */
export interface TokenInput extends NodeJS.ReadableStream {
  isTTY?: boolean | undefined;
}

export interface ClusterIdDeps {
  stdin?: TokenInput;
  cwd?: string;
  homeDir?: string;
}

/** The environment variable of the exec that carries the token into the container (never its argv). */
export const CLUSTER_ID_ENV = 'CW_CLUSTER_ID';

/** Largest token input read: a token is at most 512 characters; a little room for whitespace. */
const MAX_TOKEN_BYTES = 4096;

export const ARGV_WARNING =
  'WARNING: a cluster id given on the command line is visible in the process list; ' +
  'pass it on stdin (cw-containerctl cluster-id - <FILE) or from a file (cw-containerctl cluster-id @FILE)\n';

/** The token from piped input: its text, trimmed (one token, on one line). */
export async function readTokenInput(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (text.length > MAX_TOKEN_BYTES) throw new ExitError('cluster id input is too long, nothing changed');
  }
  return text.trim();
}

/**
 * `cw-containerctl cluster-id [-|@FILE|TOKEN]`: sets (or shows) the cluster's authentication token.
 * The token reaches `cw-appliance cluster-id` in the exec's environment, never on a command line.
 */
export async function clusterId(options: ClusterIdOptions, ctx: CommandContext, deps: ClusterIdDeps = {}): Promise<void> {
  const stdin = deps.stdin ?? process.stdin;
  const arg = options.token;
  let token: string | undefined;
  if (arg === '-') {
    token = await readTokenInput(stdin);
    if (!token) throw new ExitError('empty cluster id on stdin, nothing changed');
  } else if (arg?.startsWith('@')) {
    // `@` is not a token character, so `@FILE` is never a token.
    const label = `cluster id file ${arg.slice(1)}`;
    token = (await readLocalText(arg.slice(1), { cwd: deps.cwd ?? process.cwd(), home: deps.homeDir ?? homedir() }, { maxBytes: MAX_TOKEN_BYTES, label })).trim();
    if (!token) throw new ExitError(`${label} is empty, nothing changed`);
  } else if (arg !== undefined) {
    token = arg.trim();
    if (!token) throw new ExitError('empty cluster id, nothing changed');
    ctx.stderr.write(ARGV_WARNING);
  } else if (!stdin.isTTY) {
    // A piped token; an empty pipe (`</dev/null`) asks for the current one, as a terminal does.
    token = (await readTokenInput(stdin)) || undefined;
  }
  const engine = await ctx.engine();
  const container = await findRunningAppliance(engine, options.name);
  const result = token
    ? await runAppliance(engine, container, ['cluster-id'], [`${CLUSTER_ID_ENV}=${token}`])
    : await runAppliance(engine, container, ['cluster-id']);
  ctx.stdout.write(withNewline(result.stdout));
}

import { homedir } from 'node:os';
import { ExitError, errorMessage } from '../../../lib/errors.js';
import { LocalFileError, readLocalText, resolveLocalPath } from '../../../lib/local-files.js';
import { parsePublicKey, type PublicKeyInfo } from '../../../lib/sshkey.js';
import { isValidAdminName } from '../../../lib/validate.js';
import { findRunningAppliance, runAppliance } from '../appliance.js';
import type { CommandContext } from '../context.js';
import { withNewline } from '../format.js';

export interface AddAdminOptions {
  /** Admin user name (`isValidAdminName`). */
  admin: string;
  /** An OpenSSH public key line, or `@FILE` (`~` expanded). */
  key: string;
  name?: string | undefined;
}

export interface AddAdminDeps {
  homeDir?: string;
}

/** Largest key file read: an RSA-16384 public key is about 3 KiB. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

/**
 * The key text from the argument: itself, or the one key line of `@FILE` (a regular file of at most
 * 64 KiB: `@/dev/zero` or a FIFO is refused, not read).
 */
export async function readKeyArgument(arg: string, home: string, cwd = process.cwd()): Promise<string> {
  if (!arg.startsWith('@')) return arg;
  const path = resolveLocalPath(arg.slice(1), { cwd, home });
  let text: string;
  try {
    text = await readLocalText(path, { cwd, home }, { maxBytes: MAX_KEY_FILE_BYTES, label: `ssh key file ${path}`, keepNewline: true });
  } catch (err) {
    if (err instanceof LocalFileError && err.code === 'ENOENT') throw new ExitError(`ssh key file ${path} not found`);
    if (err instanceof ExitError) throw err;
    throw new ExitError(`cannot read ssh key file ${path}: ${errorMessage(err)}`);
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (lines.length === 0) throw new ExitError(`invalid ssh key: ${path} is empty`);
  if (lines.length > 1 && !text.includes('PRIVATE KEY')) throw new ExitError(`invalid ssh key: ${path} holds ${lines.length} lines; give a file with one public key`);
  return lines.length > 1 ? text : lines[0]!;
}

/** Validates NAME and KEY on the host; nothing is sent to the container when either is wrong. */
export async function validateAdmin(admin: string, keyArg: string, home: string): Promise<PublicKeyInfo> {
  const check = isValidAdminName(admin);
  if (check !== true) throw new ExitError(`invalid admin name "${admin}": ${check}`);
  const text = await readKeyArgument(keyArg, home);
  try {
    return parsePublicKey(text);
  } catch (err) {
    throw new ExitError(`invalid ssh key: ${errorMessage(err)}`);
  }
}

/** `cw-containerctl add-admin NAME KEY|@FILE`: adds an admin allowed to use the cw-* tools. */
export async function addAdmin(options: AddAdminOptions, ctx: CommandContext, deps: AddAdminDeps = {}): Promise<void> {
  const key = await validateAdmin(options.admin, options.key, deps.homeDir ?? homedir());
  const engine = await ctx.engine();
  const container = await findRunningAppliance(engine, options.name);
  const result = await runAppliance(engine, container, ['admin-add', options.admin, key.line]);
  ctx.stdout.write(withNewline(result.stdout));
}

// Commands run on compute nodes over ssh, as root, with the appliance's own key (STORAGE/ssh/id_ed25519,
// the key the power plugins use for relays and hypervisors).
//
// Quoting. Locally nothing goes through a shell: `ssh` is started by execa with an argument array. But
// ssh joins its remote-command arguments with spaces into ONE string, and sshd on the node hands that
// string to root's login shell (`sh -c STRING`). So `ssh n3 echo '$(reboot)'` would run `reboot` on the
// node. To make the node run exactly the words the admin gave (argv in, argv out), every word is quoted
// for a POSIX shell here — wrapped in single quotes, inside which nothing is special, and each `'` in it
// written as `'\''` (close, escaped quote, reopen) — and the quoted words are passed as ssh's single
// remote-command argument. The remote shell then undoes exactly that quoting and nothing else: `$`,
// backticks, `;`, `|`, globs, newlines and leading dashes arrive as literal characters. An admin who
// wants the node's shell says so: `exec sh -c 'uptime; df -h /'`.
import { shellQuote } from '../../lib/shell-quote.js';
import { sshArgv, type SshIdentity } from '../power/ssh.js';
import { pinnedHostOptions } from './host-keys.js';
import { muxClientOptions, type MasterTarget } from './masters.js';

/** A node as exec and soft reboot reach it: its name and the address sshd listens on. */
export interface ExecTarget {
  name: string;
  /** The node's IPv4 address (the database's `ip`); null when it has none. */
  ip: string | null;
  /** sshd port on the node (default 22). */
  port?: number;
  /** The host key the node reported at this boot (`ssh-ed25519 BASE64`): the only one accepted (host-keys.ts). */
  hostKey?: string;
}

/** The login used on nodes. */
export const NODE_USER = 'root';

/**
 * The single string sshd gives the node's shell for `words`: each word single-quoted as needed.
 * Example: `remoteCommand(['echo', "it's", '$HOME'])` -> `echo 'it'\''s' '$HOME'`.
 */
export function remoteCommand(words: readonly string[]): string {
  if (words.length === 0) throw new Error('remoteCommand needs a command');
  return words.map(shellQuote).join(' ');
}

/**
 * The argv of `ssh` (without `ssh` itself) running `words` as root on `target`, with the connection
 * deadline `connectTimeoutS`. The remote command is one argument, quoted by remoteCommand. With
 * `controlPath`, ssh runs it over that master's connection (masters.ts), or connects itself when the
 * master is gone.
 * Example: `nodeSshArgv({name: 'n3', ip: '10.0.0.3'}, ['uname', '-r'], id, 5)` ->
 * `[..., '-l', 'root', '--', '10.0.0.3', 'uname -r']`.
 */
export function nodeSshArgv(target: ExecTarget, words: readonly string[], identity: SshIdentity, connectTimeoutS: number, controlPath?: string): string[] {
  if (target.ip === null) throw new Error(`${target.name} has no IP address`);
  // sshArgv quotes each word with the same shellQuote; the result is the same as remoteCommand(words).
  const args = sshArgv({ host: target.ip, user: NODE_USER }, words, identity, connectTimeoutS);
  if (target.port !== undefined && target.port !== 22) args.unshift('-p', String(target.port));
  if (target.hostKey !== undefined) args.unshift(...pinnedHostOptions(target.name, identity));
  if (controlPath !== undefined) args.unshift(...muxClientOptions(controlPath));
  return args;
}

/** Where the master for `target` connects (the pool's key is user@ip:port). */
export function masterTarget(target: ExecTarget & { ip: string }): MasterTarget {
  return { host: target.ip, user: NODE_USER, port: target.port ?? 22, ...(target.hostKey === undefined ? {} : { pinnedAs: target.name }) };
}

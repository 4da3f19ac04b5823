// ssh command lines for plugins that run their tool on another host (an IPMI relay, a hypervisor).
// The remote side hands ssh's command line to the login shell, so every remote word is quoted here;
// locally nothing goes through a shell.
import { execa } from 'execa';
import { access, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SshHost } from './uri.js';
import { shellQuote } from '../../lib/shell-quote.js';

/** The appliance's own client key and the host keys it has seen, in the storage's private ssh/ directory. */
export interface SshIdentity {
  keyFile: string;
  knownHostsFile: string;
}


/**
 * The options every `ssh` of the appliance starts with: its own key only, never a prompt, a host key seen
 * for the first time recorded (accept-new) and a changed one refused, the connection deadline.
 */
export function sshOptions(identity: SshIdentity, connectTimeoutS: number): string[] {
  return [
    '-i',
    identity.keyFile,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=accept-new',
    '-o',
    `UserKnownHostsFile=${identity.knownHostsFile}`,
    '-o',
    `ConnectTimeout=${Math.max(1, Math.ceil(connectTimeoutS))}`,
    '-o',
    'LogLevel=ERROR',
    '-T',
  ];
}

/**
 * The argv of `ssh` running `remote` (one word each) on `to`, non-interactively with the appliance's
 * key (sshOptions).
 * Example: `sshArgv({host: 'r1'}, ['ipmitool', '-V'], id, 5)` ->
 * `['-i', KEY, '-o', 'BatchMode=yes', ..., '--', 'r1', 'ipmitool -V']`.
 */
export function sshArgv(to: SshHost, remote: readonly string[], identity: SshIdentity, connectTimeoutS: number): string[] {
  const args = sshOptions(identity, connectTimeoutS);
  if (to.user !== undefined) args.push('-l', to.user);
  args.push('--', to.host, remote.map(shellQuote).join(' '));
  return args;
}

const generating = new Map<string, Promise<void>>();

/**
 * Makes the appliance's ed25519 client key if it does not exist yet (once, however many nodes ask at the
 * same time). Its public half (`KEY.pub`) is what relays and hypervisor hosts authorize.
 */
export function ensureSshKey(identity: SshIdentity): Promise<void> {
  let pending = generating.get(identity.keyFile);
  if (!pending) {
    pending = (async () => {
      try {
        await access(identity.keyFile);
        return;
      } catch {
        // Missing: made below.
      }
      await mkdir(dirname(identity.keyFile), { recursive: true, mode: 0o700 });
      await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cw-appliance', '-f', identity.keyFile], { stdin: 'ignore' });
    })();
    generating.set(identity.keyFile, pending);
    pending.catch(() => generating.delete(identity.keyFile));
  }
  return pending;
}

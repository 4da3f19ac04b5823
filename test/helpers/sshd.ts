// A throwaway sshd for tests and benchmarks: a host key, one authorized key for root, and a config that
// needs nothing from the host (no PAM, no strict modes) — run it with `sshd -D -e -f CONFIG`.
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findTool } from './tools.js';

/**
 * Writes `dir/host_key`, `dir/authorized_keys` (holding `authorizedKey`) and `dir/sshd_config` with `extra`
 * lines added; returns the config's path. Example:
 * `const config = await writeTestSshd(dir, key, [`PidFile ${join(dir, 'sshd.pid')}`])`.
 */
export async function writeTestSshd(dir: string, authorizedKey: string | Buffer, extra: readonly string[] = []): Promise<string> {
  mkdirSync(dir, { recursive: true });
  // Kept when it exists: an sshd started again in the same directory (a node's sshd restarting) has the
  // same host key, as a real one does (and ssh-keygen would ask whether to overwrite it).
  if (!existsSync(join(dir, 'host_key'))) await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')], { stdin: 'ignore' });
  writeFileSync(join(dir, 'authorized_keys'), authorizedKey);
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'StrictModes no',
      'UsePAM no',
      ...extra,
      '',
    ].join('\n'),
  );
  // sshd's privilege separation directory.
  mkdirSync('/run/sshd', { recursive: true });
  return config;
}

/**
 * Starts a test sshd (see writeTestSshd, files in `dir`) inside network namespace `ns`, in its own UTS
 * namespace (so `hostname` answers `hostname`) and mount namespace; its pid file is `dir/sshd.pid` once it
 * listens. `extra` adds sshd_config lines. Stop it by killing the returned `sshd` process (SIGTERM). (An
 * object, because an async function cannot resolve to a process, itself a promise, without awaiting it.)
 * Example: `const { sshd } = await startNamespacedSshd({ ns: 'cwexn1', dir, hostname: 'n1', key })`.
 */
export async function startNamespacedSshd(opts: {
  ns: string;
  dir: string;
  hostname: string;
  key: string | Buffer;
  extra?: readonly string[];
}): Promise<{ sshd: ResultPromise }> {
  const config = await writeTestSshd(opts.dir, opts.key, [`PidFile ${join(opts.dir, 'sshd.pid')}`, ...(opts.extra ?? [])]);
  const script = 'hostname "$1" && exec "$2" -D -e -f "$3"';
  const sshd = execa(
    'ip',
    ['netns', 'exec', opts.ns, 'unshare', '--uts', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', opts.hostname, findTool('sshd') ?? '/usr/sbin/sshd', config],
    { reject: false, stdin: 'ignore' },
  );
  return { sshd };
}

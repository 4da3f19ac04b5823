import { chmod, chown, mkdir, open, realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { ensurePrivateDir } from '../../../lib/storage-layout.js';
import { tcpListeningProbe } from '../../supervisor/probes.js';
import type { ChildServiceSpec } from '../../supervisor/types.js';
import { DAEMON_RESTART, type ServiceContext } from '../context.js';
import { installConfig, pathExists } from '../../config/files.js';
import { tail } from '../run.js';
import { absPath, conf, lines, oneOf, port, renderTemplateFile } from '../../config/template.js';

export const HOST_KEY_TYPES = ['ed25519', 'rsa'] as const;
/** sshd's privilege-separation directory; it must exist, root-owned and not writable by others. */
export const PRIVSEP_DIR = '/run/sshd';

export interface SshdFiles {
  config: string;
  authorizedKeys: string;
  pidFile: string;
  hostKeys: string[];
}

export function sshdFiles(ctx: ServiceContext): SshdFiles {
  return {
    config: path.join(ctx.paths.generatedDir, 'sshd_config'),
    authorizedKeys: ctx.paths.authorizedKeysFile,
    pidFile: path.join(ctx.paths.runDir, 'sshd.pid'),
    hostKeys: HOST_KEY_TYPES.map((type) => path.join(ctx.paths.sshDir, `ssh_host_${type}_key`)),
  };
}

export async function renderSshdConfig(ctx: ServiceContext, strictModes: boolean): Promise<string> {
  const files = sshdFiles(ctx);
  const { text } = await renderTemplateFile('sshd_config.template', ctx.paths.templates, {
    ssh_port: port(ctx.ports.ssh),
    host_keys: lines(files.hostKeys.map((key) => conf`HostKey ${absPath(key)}`)),
    pid_file: absPath(files.pidFile),
    authorized_keys: absPath(files.authorizedKeys),
    strict_modes: oneOf(strictModes ? 'yes' : 'no', ['yes', 'no']),
  });
  return text;
}

/** Generates the missing host keys (first start); existing keys are kept and tightened to 0600. */
export async function ensureHostKeys(ctx: ServiceContext): Promise<string[]> {
  ensurePrivateDir(ctx.paths.sshDir);
  const generated: string[] = [];
  for (const [i, type] of HOST_KEY_TYPES.entries()) {
    const key = sshdFiles(ctx).hostKeys[i] as string;
    if (!(await pathExists(key))) {
      const bits = type === 'rsa' ? ['-b', '3072'] : [];
      const result = await ctx.run(ctx.bins.sshKeygen, ['-q', '-N', '', '-t', type, ...bits, '-C', 'cw-headnode', '-f', key]);
      if (result.exitCode !== 0) throw new Error(`ssh-keygen -t ${type} failed: ${tail(result.output)}`);
      generated.push(type);
    }
    await chmod(key, 0o600);
  }
  return generated;
}

/**
 * Paths from `file` up to `/` that StrictModes would reject: not owned by root, or writable by group/others.
 */
export async function strictModesProblems(file: string): Promise<Array<{ path: string; problem: string }>> {
  const problems: Array<{ path: string; problem: string }> = [];
  let current = await realpath(file);
  for (;;) {
    const st = await stat(current);
    if (st.uid !== 0) problems.push({ path: current, problem: `owned by uid ${st.uid}` });
    if ((st.mode & 0o022) !== 0) problems.push({ path: current, problem: `mode ${(st.mode & 0o777).toString(8)} is group/world-writable` });
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  return problems;
}

/**
 * Makes the authorized_keys file and its parents inside the storage directory acceptable to sshd's
 * StrictModes (root-owned, not group/world-writable). Returns what still stands in the way (outside
 * storage, or a chown refused by a user namespace); the caller then turns StrictModes off.
 */
export async function prepareAuthorizedKeys(ctx: ServiceContext): Promise<string[]> {
  const { authorizedKeys } = sshdFiles(ctx);
  ensurePrivateDir(ctx.paths.adminsDir);
  if (!(await pathExists(authorizedKeys))) await (await open(authorizedKeys, 'a', 0o600)).close();
  await chmod(authorizedKeys, 0o600);
  const storage = await realpath(ctx.paths.storage);
  for (const { path: p } of await strictModesProblems(authorizedKeys)) {
    if (p !== storage && !p.startsWith(`${storage}/`)) continue;
    const st = await stat(p);
    try {
      if (st.uid !== 0) {
        await chown(p, 0, 0);
        ctx.log('sshd', `${p} is now owned by root (sshd requires it for ${authorizedKeys})`);
      }
      if ((st.mode & 0o022) !== 0) await chmod(p, st.mode & 0o7755);
    } catch {
      // reported below
    }
  }
  return (await strictModesProblems(authorizedKeys)).map((p) => `${p.path} ${p.problem}`);
}

/** OpenSSH sshd in the foreground (`-D`), logging to stderr (`-e`); SIGHUP re-reads its config. */
export function sshdService(ctx: ServiceContext): ChildServiceSpec {
  const files = sshdFiles(ctx);
  return {
    kind: 'child',
    name: 'sshd',
    dependsOn: [],
    essential: true,
    async prepare() {
      const generated = await ensureHostKeys(ctx);
      if (generated.length > 0) ctx.log('sshd', `generated host keys: ${generated.join(', ')}`);
      await mkdir(PRIVSEP_DIR, { recursive: true, mode: 0o755 });
      await chmod(PRIVSEP_DIR, 0o755);
      const problems = await prepareAuthorizedKeys(ctx);
      if (problems.length > 0) ctx.log('sshd', `StrictModes off: ${problems.join('; ')}`);
      const text = await renderSshdConfig(ctx, problems.length === 0);
      const result = await installConfig(files.config, text, async (candidate) => {
        const check = await ctx.run(ctx.bins.sshd, ['-t', '-f', candidate]);
        if (check.exitCode !== 0) throw new Error(tail(check.output, 5) || `sshd -t exited with ${check.exitCode}`);
      });
      if (result.refused) ctx.log('sshd', `new sshd_config rejected, keeping the last good one: ${result.refused}`);
    },
    command: () => ({
      command: ctx.bins.sshd,
      args: ['-D', '-e', '-f', files.config],
      env: ctx.baseEnv,
    }),
    // Not a TCP connect: sshd would log each probe as a connection closed before the handshake.
    readiness: { probe: tcpListeningProbe(ctx.ports.ssh), intervalMs: 100, timeoutMs: 10_000 },
    restart: DAEMON_RESTART,
    reload: { kind: 'signal', signal: 'SIGHUP' },
    stopDeadlineMs: 2000,
  };
}

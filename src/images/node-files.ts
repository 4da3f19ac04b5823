// What every node image carries from us: the status agent and its systemd unit, enabled.
// Called by the image builders after a root filesystem is made (or imported).
//
// Nothing else is changed: root stays locked (no default passwords), no network configuration is added
// (the initramfs leaves the boot interface configured and nothing on the node must reconfigure it), and
// systemd's getty generator starts a serial getty by itself for console=ttyS0.
import { chmod, copyFile, lstat, mkdir, readlink, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { NODE_SCRIPTS_DIR } from './initramfs/build.js';

export const AGENT_PATH = '/usr/local/sbin/cw-node-agent';
export const AGENT_UNIT = 'cw-node-agent.service';
const UNIT_PATH = `/etc/systemd/system/${AGENT_UNIT}`;
const WANTS_LINK = `/etc/systemd/system/multi-user.target.wants/${AGENT_UNIT}`;

export interface InstallNodeFilesResult {
  /** Paths written, inside the root. */
  installed: string[];
  /** Things the image lacks for the agent to work (e.g. no curl). */
  warnings: string[];
}

/**
 * Installs and enables the node agent in an image root: `await installNodeFiles('/ws/DefaultImage/root')`.
 * Safe to run again (files are replaced, the link is remade).
 */
export async function installNodeFiles(rootDir: string, scriptsDir = NODE_SCRIPTS_DIR): Promise<InstallNodeFilesResult> {
  const at = (p: string) => join(rootDir, p);
  await mkdir(at('/usr/local/sbin'), { recursive: true, mode: 0o755 });
  await mkdir(at('/etc/systemd/system/multi-user.target.wants'), { recursive: true, mode: 0o755 });
  await mkdir(at('/etc/cw'), { recursive: true, mode: 0o755 });

  await replaceFile(join(scriptsDir, 'cw-node-agent'), at(AGENT_PATH), 0o755);
  await replaceFile(join(scriptsDir, AGENT_UNIT), at(UNIT_PATH), 0o644);
  const link = at(WANTS_LINK);
  const current = await readlink(link).catch(() => undefined);
  if (current !== UNIT_PATH) {
    await rm(link, { force: true });
    await symlink(UNIT_PATH, link);
  }

  const warnings: string[] = [];
  if (!(await anyExists(rootDir, ['/usr/bin/curl', '/bin/curl']))) warnings.push('the image has no curl: the node agent cannot report (install curl)');
  if (!(await anyExists(rootDir, ['/sbin/init', '/usr/sbin/init', '/lib/systemd/systemd', '/usr/lib/systemd/systemd']))) {
    warnings.push('the image has no /sbin/init (install systemd-sysv): nodes cannot boot it');
  }
  return { installed: [AGENT_PATH, UNIT_PATH, WANTS_LINK], warnings };
}

/** Copies src over dest, replacing a symlink at dest rather than writing through it. */
async function replaceFile(src: string, dest: string, mode: number): Promise<void> {
  const st = await lstat(dest).catch(() => undefined);
  if (st && !st.isFile()) await rm(dest, { recursive: true, force: true });
  await copyFile(src, dest);
  await chmod(dest, mode);
}

async function anyExists(root: string, paths: readonly string[]): Promise<boolean> {
  for (const p of paths) {
    // lstat: a symlink (e.g. /sbin/init -> /lib/systemd/systemd, absolute) counts without being followed.
    if (await lstat(join(root, p)).then(() => true, () => false)) return true;
  }
  return false;
}

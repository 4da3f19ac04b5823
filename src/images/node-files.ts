// What every node image carries from us: the status agent and its systemd unit, enabled; and no ssh host
// keys. A key baked into an image would be every node's key, and images are served to anyone who asks at
// boot, so anyone could pose as any node to the head node's ssh. Instead cw-ssh-host-keys.service makes
// the keys at each boot (before sshd starts) and the agent reports the public one with the node secret,
// so the head node pins it. Called by the image builders after a root filesystem is made (or imported).
//
// Nothing else is changed: root stays locked (no default passwords), no network configuration is added
// (the initramfs leaves the boot interface configured and nothing on the node must reconfigure it), and
// systemd's getty generator starts a serial getty by itself for console=ttyS0.
import { chmod, copyFile, lstat, mkdir, readdir, readlink, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { NODE_SCRIPTS_DIR } from './initramfs/build.js';

export const AGENT_PATH = '/usr/local/sbin/cw-node-agent';
export const AGENT_UNIT = 'cw-node-agent.service';
const UNIT_PATH = `/etc/systemd/system/${AGENT_UNIT}`;
const WANTS_LINK = `/etc/systemd/system/multi-user.target.wants/${AGENT_UNIT}`;
export const HOST_KEYS_UNIT = 'cw-ssh-host-keys.service';
const HOST_KEYS_UNIT_PATH = `/etc/systemd/system/${HOST_KEYS_UNIT}`;
const HOST_KEYS_WANTS_LINK = `/etc/systemd/system/multi-user.target.wants/${HOST_KEYS_UNIT}`;

export interface InstallNodeFilesResult {
  /** Paths written, inside the root. */
  installed: string[];
  /** Things the image lacks for the agent to work (e.g. no curl). */
  warnings: string[];
  /** ssh host key files removed from the image (`/etc/ssh/ssh_host_ed25519_key`, ...). */
  removedHostKeys: string[];
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
  await enable(at(WANTS_LINK), UNIT_PATH);
  await replaceFile(join(scriptsDir, HOST_KEYS_UNIT), at(HOST_KEYS_UNIT_PATH), 0o644);
  await enable(at(HOST_KEYS_WANTS_LINK), HOST_KEYS_UNIT_PATH);
  const removedHostKeys: string[] = [];
  for (const entry of await readdir(at('/etc/ssh')).catch(() => [] as string[])) {
    if (!/^ssh_host_.*_key(\.pub)?$/.test(entry)) continue;
    await rm(at(`/etc/ssh/${entry}`), { force: true });
    removedHostKeys.push(`/etc/ssh/${entry}`);
  }

  const warnings: string[] = [];
  if (!(await anyExists(rootDir, ['/usr/bin/curl', '/bin/curl']))) warnings.push('the image has no curl: the node agent cannot report (install curl)');
  if (!(await anyExists(rootDir, ['/sbin/init', '/usr/sbin/init', '/lib/systemd/systemd', '/usr/lib/systemd/systemd']))) {
    warnings.push('the image has no /sbin/init (install systemd-sysv): nodes cannot boot it');
  }
  return { installed: [AGENT_PATH, UNIT_PATH, WANTS_LINK, HOST_KEYS_UNIT_PATH, HOST_KEYS_WANTS_LINK], warnings, removedHostKeys };
}

/** Makes `link` a symlink to `unitPath` (a unit enabled as systemctl would), replacing whatever is there. */
async function enable(link: string, unitPath: string): Promise<void> {
  const current = await readlink(link).catch(() => undefined);
  if (current !== unitPath) {
    await rm(link, { force: true });
    await symlink(unitPath, link);
  }
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

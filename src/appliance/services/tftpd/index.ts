import { chmod, mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { udpBoundProbe } from '../../supervisor/probes.js';
import type { ChildServiceSpec } from '../../supervisor/types.js';
import { DAEMON_RESTART, type ServiceContext } from '../context.js';
import { copyIfChanged, pathExists } from '../../config/files.js';

/** iPXE binaries served over TFTP: BIOS (UNDI chain-load), UEFI, and UEFI using the firmware's network driver. */
export const IPXE_FILES = ['undionly.kpxe', 'ipxe.efi', 'snponly.efi'] as const;

/** Copies the iPXE binaries into the boot directory when missing or different; returns the names copied. */
export async function installIpxeFiles(ipxeDir: string, bootDir: string): Promise<{ copied: string[]; missing: string[] }> {
  const copied: string[] = [];
  const missing: string[] = [];
  for (const name of IPXE_FILES) {
    const from = path.join(ipxeDir, name);
    if (!(await pathExists(from))) {
      missing.push(name);
      continue;
    }
    if (await copyIfChanged(from, path.join(bootDir, name), 0o644)) copied.push(name);
  }
  return { copied, missing };
}

/** The unprivileged account tftpd switches to: Debian's `tftp` when it exists, else `nobody`. */
export async function tftpUser(passwdFile = '/etc/passwd'): Promise<string> {
  const passwd = await readFile(passwdFile, 'utf8').catch(() => '');
  return passwd.split('\n').some((line) => line.startsWith('tftp:')) ? 'tftp' : 'nobody';
}

/**
 * tftpd-hpa in the foreground, chrooted (`--secure`) into the boot directory. It logs only to syslog,
 * so it depends on the supervisor's /dev/log sink, which it connects to before the chroot.
 */
export function tftpdService(ctx: ServiceContext): ChildServiceSpec {
  let user = 'nobody';
  return {
    kind: 'child',
    name: 'tftpd',
    dependsOn: ['syslog'],
    essential: true,
    async prepare() {
      const boot = ctx.paths.bootDir;
      await mkdir(boot, { recursive: true });
      // Everything below is read by an unprivileged tftpd (and nginx's www-data workers).
      await chmod(boot, 0o755);
      const { copied, missing } = await installIpxeFiles(ctx.bins.ipxeDir, boot);
      if (copied.length > 0) ctx.log('tftpd', `installed ${copied.join(', ')} into ${boot}`);
      if (missing.length > 0) ctx.log('tftpd', `iPXE binaries not found in ${ctx.bins.ipxeDir}: ${missing.join(', ')}`);
      user = await tftpUser();
    },
    command: () => ({
      command: ctx.bins.tftpd,
      args: ['--foreground', '--secure', '--verbose', '--user', user, '--address', `0.0.0.0:${ctx.ports.tftp}`, ctx.paths.bootDir],
      env: ctx.baseEnv,
    }),
    readiness: { probe: udpBoundProbe(ctx.ports.tftp), intervalMs: 100, timeoutMs: 10_000 },
    restart: DAEMON_RESTART,
    reload: { kind: 'restart' },
    stopDeadlineMs: 2000,
  };
}

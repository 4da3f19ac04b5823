// Debian-family roots with debootstrap: a minimal base plus what a network-booted node needs (systemd,
// udev, networking, curl for the agent, sshd for the head node's exec and soft reboot, kmod, a kernel).
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError, runLogged, type DistroSpec, type LineSink } from './common.js';

export const DEFAULT_DEBIAN_MIRROR = 'http://deb.debian.org/debian';
export const DEFAULT_DEBIAN_RELEASE = 'bookworm';
/** Packages every apt node image gets on top of minbase. */
export const NODE_PACKAGES_APT = ['systemd-sysv', 'udev', 'iproute2', 'curl', 'kmod', 'ca-certificates', 'openssh-server', 'linux-image-cloud-amd64'] as const;

const DEBIAN_CODENAMES: Record<string, string> = { '10': 'buster', '11': 'bullseye', '12': 'bookworm', '13': 'trixie' };

export interface DebootstrapPlan {
  suite: string;
  mirror: string;
  args: string[];
}

/**
 * The debootstrap command for a distro: suite from `release` (`12` -> `bookworm`), mirror from the
 * first repo URL (default deb.debian.org).
 */
export function debootstrapPlan(distro: DistroSpec, dir: string, extra: readonly string[] = []): DebootstrapPlan {
  const release = distro.release.trim() || DEFAULT_DEBIAN_RELEASE;
  const suite = DEBIAN_CODENAMES[release] ?? release;
  if (!/^[a-z][a-z0-9-]{1,31}$/.test(suite)) throw new BuildError(`distro ${distro.name}: release "${release}" is not a Debian suite name such as bookworm`);
  const url = distro.repos.flatMap((r) => r.urls)[0] ?? DEFAULT_DEBIAN_MIRROR;
  if (!/^(https?|file):\/\/[^\s'"]+$/.test(url)) throw new BuildError(`distro ${distro.name}: repo URL "${url}" is not an http(s) or file URL`);
  const mirror = url.replace(/\/+$/, '');
  const include = [...NODE_PACKAGES_APT, ...extra].join(',');
  return { suite, mirror, args: ['--variant=minbase', `--include=${include}`, suite, dir, mirror] };
}

/** Runs debootstrap into `dir` (which must not exist or be empty), then makes the root node-ready. */
export async function buildDebootstrapRoot(distro: DistroSpec, dir: string, onLine?: LineSink): Promise<void> {
  const plan = debootstrapPlan(distro, dir);
  await runLogged('debootstrap', plan.args, onLine);
  await finishDebianRoot(dir);
}

/**
 * After debootstrap: each node must generate its own machine-id at first boot, the package lists and
 * downloaded .debs need not travel in every image, and there is no fstab to wait for.
 */
export async function finishDebianRoot(dir: string): Promise<void> {
  await writeFile(join(dir, 'etc/machine-id'), '');
  await rm(join(dir, 'var/lib/dbus/machine-id'), { force: true });
  await writeFile(join(dir, 'etc/fstab'), '# root is set up by the cw initramfs\n');
  await cleanAptCaches(dir);
}

/** Removes apt's downloaded packages and lists (re-created by `apt-get update`). */
export async function cleanAptCaches(dir: string): Promise<void> {
  for (const sub of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
    const base = join(dir, sub);
    const names = await readdir(base).catch(() => [] as string[]);
    for (const n of names) {
      if (n === 'partial' || n === 'lock') continue;
      await rm(join(base, n), { recursive: true, force: true });
    }
  }
  await rm(join(dir, 'var/cache/apt/pkgcache.bin'), { force: true });
  await rm(join(dir, 'var/cache/apt/srcpkgcache.bin'), { force: true });
}

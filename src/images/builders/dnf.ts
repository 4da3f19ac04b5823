// RPM-family roots with the host's dnf: `dnf --installroot DIR --releasever R` against only the
// distro's own repos (given with --repofrompath, `$releasever`/`$basearch` filled in here so the URLs
// in errors are the ones really fetched). yum distros are built the same way: dnf reads yum repos.
import { arch } from 'node:os';
import { BuildError, runLogged, type DistroSpec, type LineSink } from './common.js';

/** Packages every dnf/yum node image gets: an init, networking, curl for the agent, sshd (exec, soft reboot), kmod, a kernel. */
export const NODE_PACKAGES_DNF = ['systemd', 'iproute', 'curl', 'openssh-server', 'kmod', 'kernel', 'ca-certificates', 'dnf', 'rpm'] as const;

/** `x86_64` for Node's `x64` (the RPM name of the machine), as `$basearch` expects. */
export function rpmBaseArch(nodeArch: string = arch()): string {
  const map: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ppc64: 'ppc64le', s390x: 's390x' };
  return map[nodeArch] ?? nodeArch;
}

/** Fills in `$releasever`, `$basearch` and `$arch` (also the `${name}` forms). */
export function substituteRepoVars(url: string, vars: { releasever: string; basearch: string }): string {
  const table: Record<string, string> = { releasever: vars.releasever, basearch: vars.basearch, arch: vars.basearch };
  return url.replace(/\$(?:\{(\w+)\}|(\w+))/g, (whole, braced: string | undefined, bare: string | undefined) => table[(braced ?? bare) as string] ?? whole);
}

export interface DnfOptions {
  /** Packages to install (default NODE_PACKAGES_DNF). */
  packages?: readonly string[];
  basearch?: string;
}

/** The distro's release as dnf's `$releasever` (`9`), or a BuildError for anything else. */
export function releaseVersion(distro: DistroSpec): string {
  const releasever = distro.release.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/.test(releasever)) {
    throw new BuildError(`distro ${distro.name}: release "${distro.release}" is not a release version such as 9`);
  }
  return releasever;
}

/**
 * The dnf argument list that builds a root. Each repo URL becomes a repo `cw-<repo>-<n>`; only those
 * are enabled (`--repo`), so the host's own repos never leak into an image. Keys turn on gpgcheck.
 * `dnfArgs({name: 'Rocky', packageManager: 'dnf', release: '9', repos: [...]}, '/ws/roots/r9')`.
 */
export function dnfArgs(distro: DistroSpec, dir: string, opts: DnfOptions = {}): string[] {
  const releasever = releaseVersion(distro);
  const basearch = opts.basearch ?? rpmBaseArch();
  // skip_if_unavailable=False: a repo that cannot be read (a wrong URL or release) fails the build naming
  // its URL, instead of dnf going on without it and ending in "Unable to find a match: systemd ...".
  const args = [
    '-y',
    '--installroot',
    dir,
    '--releasever',
    releasever,
    '--setopt=install_weak_deps=False',
    '--setopt=tsflags=nodocs',
    '--setopt=skip_if_unavailable=False',
  ];
  const ids: string[] = [];
  const keys: string[] = [];
  for (const repo of distro.repos) {
    repo.urls.forEach((raw, i) => {
      const url = substituteRepoVars(raw, { releasever, basearch });
      if (!/^(https?|ftp|file):\/\/[^\s,'"]+$/.test(url)) throw new BuildError(`repo ${repo.name}: URL "${url}" is not an http(s), ftp or file URL`);
      const id = `cw-${repo.name}-${i}`.replace(/[^A-Za-z0-9._-]/g, '_');
      ids.push(id);
      args.push(`--repofrompath=${id},${url}`);
      if (repo.keys.length > 0) {
        const keyUrls = repo.keys.map((k) => substituteRepoVars(k, { releasever, basearch }));
        args.push(`--setopt=${id}.gpgcheck=1`, `--setopt=${id}.gpgkey=${keyUrls.join(' ')}`);
        keys.push(...keyUrls);
      } else {
        args.push(`--setopt=${id}.gpgcheck=0`);
      }
    });
  }
  if (ids.length === 0) throw new BuildError(`distro ${distro.name} has no repo URLs: add a repo (cw-clusterctl repos create ...) to it`);
  args.push(`--repo=${ids.join(',')}`, 'install', ...(opts.packages ?? NODE_PACKAGES_DNF));
  return args;
}

/** Builds a root into `dir` with the host's dnf. */
export async function buildDnfRoot(distro: DistroSpec, dir: string, onLine?: LineSink): Promise<void> {
  await runLogged('dnf', dnfArgs(distro, dir), onLine);
  // The root has no release file dnf could read the version from yet: tell it again.
  await runLogged('dnf', ['-y', '--installroot', dir, '--releasever', releaseVersion(distro), 'clean', 'all'], onLine).catch(() => {});
}

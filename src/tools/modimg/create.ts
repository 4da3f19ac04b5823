// cw-modimg --create: a new root built from a distro (debootstrap or dnf) in the workspace, with the
// node files added; buildRoot is shared with --import.
import { mkdir, rename, rm } from 'node:fs/promises';
import { buildDebootstrapRoot, DEFAULT_DEBIAN_MIRROR, DEFAULT_DEBIAN_RELEASE } from '../../images/builders/debootstrap.js';
import { buildDnfRoot } from '../../images/builders/dnf.js';
import type { DistroSpec } from '../../images/builders/common.js';
import { installNodeFiles } from '../../images/node-files.js';
import { ApiError } from '../common/client/api-client.js';
import { ExitError } from '../../lib/errors.js';
import type { StepHandle } from './report.js';
import type { ModimgSession } from './session.js';

/** Refuses to make an image whose name the workspace already holds. */
export async function refuseExisting(session: ModimgSession, name: string): Promise<void> {
  if (await session.workspace.entry(name)) {
    throw new ExitError(`a local image ${name} already exists; change it with -i ${name}, or remove it with cw-modimg -i ${name} --delete`);
  }
}

/** `cw-modimg --create [DISTRO] --set-name NAME`: a new root built from a distro with debootstrap or dnf. */
export async function createImage(session: ModimgSession, name: string, distroName: string | undefined): Promise<void> {
  await refuseExisting(session, name);
  const distro = await resolveDistro(session, distroName);
  await buildRoot(session, name, `Building ${name} from ${distro.name} (${distro.packageManager} ${distro.release || ''})`.replace(' )', ')'), async (dir, s) => {
    if (distro.packageManager === 'apt') await buildDebootstrapRoot(distro, dir, (l) => s.line(l));
    else await buildDnfRoot(distro, dir, (l) => s.line(l));
  });
}

/** Builds into `roots/NAME.partial`, adds the node files, then moves it into place and records it. */
export async function buildRoot(
  session: ModimgSession,
  name: string,
  label: string,
  build: (dir: string, s: StepHandle) => Promise<void>,
): Promise<void> {
  const root = session.workspace.rootPath(name);
  const partial = `${root}.partial`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true, mode: 0o755 });
  try {
    await session.reporter.step(label, (s) => build(partial, s));
    const files = await installNodeFiles(partial);
    session.say(`installed the node agent into ${name}`);
    if (files.removedHostKeys.length > 0) session.say(`removed ${files.removedHostKeys.length} ssh host key files from ${name}: each node makes its own at boot`);
    await rm(root, { recursive: true, force: true });
    await rename(partial, root);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
  const now = session.workspace.stamp();
  await session.workspace.put(name, { uid: null, checksum: null, file: null, root: `roots/${name}`, modified: now, updated: now });
}

/** The distro to build from: named, else the cluster's default, else Debian bookworm. */
async function resolveDistro(session: ModimgSession, name: string | undefined): Promise<DistroSpec> {
  const api = session.ctx.api();
  let distroName = name;
  if (distroName === undefined) {
    const cluster = await api.get<{ default_distro?: string | null }>('/cluster');
    distroName = cluster?.default_distro ?? undefined;
    if (distroName === undefined) {
      session.say(`the cluster has no default distro: using Debian ${DEFAULT_DEBIAN_RELEASE} from ${DEFAULT_DEBIAN_MIRROR}`);
      return { name: `Debian-${DEFAULT_DEBIAN_RELEASE}`, packageManager: 'apt', release: DEFAULT_DEBIAN_RELEASE, repos: [] };
    }
  }
  let d: { name: string; package_manager: string | null; release: string | null; repos: string[] };
  try {
    d = await api.get(`/distro/${encodeURIComponent(distroName)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) throw new ExitError(`no distro ${distroName} on the head node (cw-clusterctl distros ls lists them)`);
    throw err;
  }
  if (d.package_manager !== 'apt' && d.package_manager !== 'dnf' && d.package_manager !== 'yum') {
    throw new ExitError(`distro ${d.name} has no package_manager; set it: cw-clusterctl distros -i ${d.name} update package_manager=apt|dnf|yum`);
  }
  const repos = [];
  for (const r of d.repos ?? []) {
    const repo = await api.get<{ name: string; urls?: string[]; keys?: string[] }>(`/repo/${encodeURIComponent(r)}`);
    repos.push({ name: repo.name, urls: repo.urls ?? [], keys: repo.keys ?? [] });
  }
  return { name: d.name, packageManager: d.package_manager, release: d.release ?? '', repos };
}

// The client packages admins drop into STORAGE/clientpkgs: which RPM is the newest of a name (read from
// the RPMs' own headers, not their file names), which DEB (read from its control file, in dpkg's
// order), the TAR for a name (an admin's own
// `tar/NAME.tar.gz`, else the newest RPM converted and cached), and the listing of all of them.
import { readdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DebFormatError, readDebControl } from './deb/control.js';
import { compareDebVersions, parseDebVersion, type DebVersion } from './deb/version.js';
import { readRpmHeaders, RpmFormatError } from './rpm/header.js';
import { DebToTarRefused } from './rpm/rpm2tar.js';
import { compareEvr } from './rpm/version.js';
import { RpmTarCache } from './tar-cache.js';

/** Package names as rpm and dpkg allow them (letters, digits, `. _ + -`), not starting with a dot or dash. */
export const PACKAGE_NAME_RE = /^[A-Za-z0-9_+][A-Za-z0-9._+-]*$/;
/** Longest package name accepted (the API router's own parameter limit is 100). */
export const PACKAGE_NAME_MAX = 100;

/** Why `name` is not a package name, or null when it is one. */
export function packageNameProblem(name: string): string | null {
  if (name.length === 0) return 'is empty';
  if (name.length > PACKAGE_NAME_MAX) return `is longer than ${PACKAGE_NAME_MAX} characters`;
  if (name.includes('..')) return 'contains ..';
  if (!PACKAGE_NAME_RE.test(name)) return 'may only hold letters, digits and . _ + - (not first: . -)';
  return null;
}

/** An RPM of the repository with what its header says. */
export interface RpmEntry {
  file: string;
  name: string;
  epoch: number | undefined;
  version: string;
  release: string;
  arch: string;
}

/** A file of rpm/ or deb/ that is not a readable package: left out of downloads, flagged in the listing. */
export interface InvalidPackage {
  file: string;
  problem: string;
}

/** A DEB of the repository, with what its control file says. */
export interface DebEntry {
  file: string;
  name: string;
  version: string;
  parsed: DebVersion;
  arch: string;
}

/** The package types a node can download as they are. */
export type DownloadType = 'rpm' | 'deb';

/** One file of the listing (`GET /install/client/packages`, `cw-clusterctl clientpkgs ls`). */
export interface PackageListing {
  type: 'rpm' | 'deb' | 'tar';
  /** File name inside clientpkgs/TYPE/. */
  file: string;
  size: number;
  /** Null for a file that is not a readable package. */
  name: string | null;
  /** `[EPOCH:]VERSION-RELEASE` for an RPM, the DEB's version; null when not known. */
  version: string | null;
  arch: string | null;
  valid: boolean;
  /** Why the file is not used (invalid files only). */
  problem?: string;
  /** RPMs only: whether its converted TAR is in clientpkgs/tar already. */
  tar_cached?: boolean;
}

/** Debian architectures of the arch names nodes send (rpm's). */
const DEB_ARCH: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', noarch: 'all' };

/** The TAR to send for a package. */
export interface TarForName {
  path: string;
  /** `NAME-VERSION-RELEASE.ARCH.tar.gz` (or the admin's own file name). */
  filename: string;
  /** SHA-256 of the RPM it was made from (absent for an admin's own TAR). */
  rpmSha256?: string;
  converted: boolean;
}

export interface ClientPackageDirs {
  clientRpmDir: string;
  clientDebDir: string;
  clientTarDir: string;
}

export class ClientPackages {
  readonly dirs: ClientPackageDirs;
  readonly tars: RpmTarCache;
  /** Header (RPM) and control (DEB) facts by file, kept while the file is unchanged. */
  readonly #headers = new Map<string, { identity: string; entry: Promise<RpmEntry | DebEntry | InvalidPackage | null> }>();

  constructor(dirs: ClientPackageDirs, log?: (line: string) => void) {
    this.dirs = dirs;
    this.tars = new RpmTarCache(dirs.clientTarDir, log);
  }

  /** Every readable RPM in rpm/ (files that are not RPMs are left out). */
  async rpms(): Promise<RpmEntry[]> {
    return (await this.#rpmFiles()).filter((e): e is RpmEntry => 'name' in e);
  }

  async #rpmFiles(): Promise<(RpmEntry | InvalidPackage)[]> {
    const names = await packageFiles(this.dirs.clientRpmDir, '.rpm');
    const entries = await Promise.all(names.map((n) => this.#entry(join(this.dirs.clientRpmDir, n), readEntry)));
    return entries.filter((e): e is RpmEntry | InvalidPackage => e !== null);
  }

  /** Every DEB in deb/, the ones that are not a DEB as InvalidPackage. */
  async #debFiles(): Promise<(DebEntry | InvalidPackage)[]> {
    const names = await packageFiles(this.dirs.clientDebDir, '.deb');
    const entries = await Promise.all(names.map((n) => this.#entry(join(this.dirs.clientDebDir, n), readDebEntry)));
    return entries.filter((e): e is DebEntry | InvalidPackage => e !== null);
  }

  /** The newest DEB called `name` (for `arch`, given as x86_64/aarch64/noarch or Debian's, or `all`), or undefined. */
  async newestDeb(name: string, arch?: string): Promise<DebEntry | undefined> {
    const debArch = arch === undefined ? undefined : (DEB_ARCH[arch] ?? arch);
    const candidates = (await this.#debFiles()).filter(
      (e): e is DebEntry => 'name' in e && e.name === name && (debArch === undefined || e.arch === debArch || e.arch === 'all'),
    );
    candidates.sort((a, b) => compareDebVersions(b.parsed, a.parsed) || (a.file < b.file ? -1 : 1));
    return candidates[0];
  }

  /** The file to send for `download/TYPE/NAME`: the newest valid package of that name, or undefined. */
  async packageFor(type: DownloadType, name: string, arch?: string): Promise<{ path: string; filename: string } | undefined> {
    const entry = type === 'rpm' ? await this.newestRpm(name, arch) : await this.newestDeb(name, arch);
    if (!entry) return undefined;
    const filename = entry.file.slice(entry.file.lastIndexOf('/') + 1);
    return { path: entry.file, filename };
  }

  /** Every file of rpm/, deb/ and the admins' own TARs, invalid ones flagged; by type, name, file. */
  async list(): Promise<PackageListing[]> {
    const rows: PackageListing[] = [];
    const base = (file: string) => file.slice(file.lastIndexOf('/') + 1);
    for (const e of await this.#rpmFiles()) {
      const size = await fileSize(e.file);
      if ('problem' in e) rows.push({ type: 'rpm', file: base(e.file), size, name: null, version: null, arch: null, valid: false, problem: e.problem });
      else {
        const version = `${e.epoch ? `${e.epoch}:` : ''}${e.version}-${e.release}`;
        const tarCached = await this.tars.isCached(e.file).catch(() => false);
        rows.push({ type: 'rpm', file: base(e.file), size, name: e.name, version, arch: e.arch, valid: true, tar_cached: tarCached });
      }
    }
    for (const e of await this.#debFiles()) {
      const size = await fileSize(e.file);
      if ('problem' in e) rows.push({ type: 'deb', file: base(e.file), size, name: null, version: null, arch: null, valid: false, problem: e.problem });
      else rows.push({ type: 'deb', file: base(e.file), size, name: e.name, version: e.version, arch: e.arch, valid: true });
    }
    // The admins' own TARs (`NAME.tar.gz`); the converted ones (`SHA256.tar.gz`) show as tar_cached.
    for (const n of await packageFiles(this.dirs.clientTarDir, '.tar.gz')) {
      if (/^[0-9a-f]{64}\.tar\.gz$/.test(n)) continue;
      const name = n.slice(0, -'.tar.gz'.length);
      const valid = packageNameProblem(name) === null;
      rows.push({ type: 'tar', file: n, size: await fileSize(join(this.dirs.clientTarDir, n)), name: valid ? name : null, version: null, arch: null, valid, ...(valid ? {} : { problem: 'not named NAME.tar.gz with a package name' }) });
    }
    const order = { rpm: 0, deb: 1, tar: 2 } as const;
    rows.sort((a, b) => order[a.type] - order[b.type] || (a.name ?? '\uffff').localeCompare(b.name ?? '\uffff') || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
    return rows;
  }

  /** The newest RPM called `name` (for `arch` or noarch when given), or undefined. */
  async newestRpm(name: string, arch?: string): Promise<RpmEntry | undefined> {
    const candidates = (await this.rpms()).filter((e) => e.name === name && (arch === undefined || e.arch === arch || e.arch === 'noarch'));
    // Newest first; equal versions in file-name order, so the answer does not depend on readdir's.
    candidates.sort((a, b) => compareEvr(b, a) || (a.file < b.file ? -1 : 1));
    return candidates[0];
  }

  /** True when deb/ holds a package called `name` (by its control file). */
  async hasDeb(name: string): Promise<boolean> {
    const names = await readdir(this.dirs.clientDebDir).catch(() => [] as string[]);
    return names.some((n) => n.endsWith('.deb') && n.startsWith(`${name}_`));
  }

  /**
   * The TAR for package `name`: `tar/NAME.tar.gz` when an admin put one there, else the newest RPM `name`
   * converted (cached). Undefined when there is neither; DebToTarRefused when only a DEB has that name.
   */
  async tarFor(name: string, arch?: string): Promise<TarForName | undefined> {
    const own = join(this.dirs.clientTarDir, `${name}.tar.gz`);
    if (await isFile(own)) return { path: own, filename: `${name}.tar.gz`, converted: false };
    const rpm = await this.newestRpm(name, arch);
    if (!rpm) {
      if (await this.hasDeb(name)) throw new DebToTarRefused(`package ${name} is only a DEB`);
      return undefined;
    }
    const cached = await this.tars.tarFor(rpm.file);
    return {
      path: cached.path,
      filename: `${rpm.name}-${rpm.version}-${rpm.release}.${rpm.arch}.tar.gz`,
      rpmSha256: cached.rpmSha256,
      converted: cached.converted,
    };
  }

  async #entry<E extends RpmEntry | DebEntry>(file: string, read: (file: string) => Promise<E | InvalidPackage | null>): Promise<E | InvalidPackage | null> {
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) return null;
    const identity = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
    const known = this.#headers.get(file);
    if (known?.identity === identity) return known.entry as Promise<E | InvalidPackage | null>;
    const entry = read(file);
    this.#headers.set(file, { identity, entry });
    return entry;
  }
}

/** What an RPM's header says about it; why not when it is not a readable RPM; null when it cannot be opened. */
async function readEntry(file: string): Promise<RpmEntry | InvalidPackage | null> {
  const fh = await open(file, 'r').catch(() => null);
  if (!fh) return null;
  try {
    const { pkg } = await readRpmHeaders(fh);
    if (packageNameProblem(pkg.name) !== null) return { file, problem: 'its header holds no usable package name' };
    return { file, name: pkg.name, epoch: pkg.epoch, version: pkg.version, release: pkg.release, arch: pkg.arch };
  } catch (err) {
    if (err instanceof RpmFormatError) return { file, problem: `not an RPM: ${err.message}` };
    throw err;
  } finally {
    await fh.close();
  }
}

/** A DEB with the name, version and architecture of its control file; else why it is not used. */
async function readDebEntry(file: string): Promise<DebEntry | InvalidPackage> {
  let control;
  try {
    control = await readDebControl(file);
  } catch (err) {
    if (err instanceof DebFormatError) return { file, problem: err.message };
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { file, problem: 'cannot be read' };
    throw err;
  }
  const nameProblem = packageNameProblem(control.package);
  if (nameProblem !== null) return { file, problem: `its package name ${nameProblem}` };
  const parsed = parseDebVersion(control.version);
  if (!parsed) return { file, problem: `its version ${JSON.stringify(control.version.slice(0, 60))} is not a Debian version` };
  if (!/^[a-z0-9-]+$/.test(control.architecture)) return { file, problem: `its architecture ${JSON.stringify(control.architecture.slice(0, 30))} is not one` };
  return { file, name: control.package, version: control.version, parsed, arch: control.architecture };
}

/** The names in `dir` ending in `suffix` (not hidden: those are files being written); none when it is missing. */
async function packageFiles(dir: string, suffix: string): Promise<string[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  return names.filter((n) => n.endsWith(suffix) && !n.startsWith('.')).sort();
}

async function fileSize(file: string): Promise<number> {
  return stat(file).then(
    (s) => s.size,
    () => 0,
  );
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

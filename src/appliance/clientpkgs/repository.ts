// The client packages admins drop into STORAGE/clientpkgs: which RPM is the newest of a name (read from
// the RPMs' own headers, not their file names), and the TAR for a name (an admin's own `tar/NAME.tar.gz`,
// else the newest RPM converted and cached).
import { readdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
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
  /** Header facts by file, kept while the file is unchanged. */
  readonly #headers = new Map<string, { identity: string; entry: Promise<RpmEntry | null> }>();

  constructor(dirs: ClientPackageDirs, log?: (line: string) => void) {
    this.dirs = dirs;
    this.tars = new RpmTarCache(dirs.clientTarDir, log);
  }

  /** Every readable RPM in rpm/ (files that are not RPMs are left out). */
  async rpms(): Promise<RpmEntry[]> {
    const names = await readdir(this.dirs.clientRpmDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    const entries = await Promise.all(names.filter((n) => n.endsWith('.rpm') && !n.startsWith('.')).map((n) => this.#entry(join(this.dirs.clientRpmDir, n))));
    return entries.filter((e): e is RpmEntry => e !== null);
  }

  /** The newest RPM called `name` (for `arch` or noarch when given), or undefined. */
  async newestRpm(name: string, arch?: string): Promise<RpmEntry | undefined> {
    const candidates = (await this.rpms()).filter((e) => e.name === name && (arch === undefined || e.arch === arch || e.arch === 'noarch'));
    // Newest first; equal versions in file-name order, so the answer does not depend on readdir's.
    candidates.sort((a, b) => compareEvr(b, a) || (a.file < b.file ? -1 : 1));
    return candidates[0];
  }

  /** True when deb/ holds a package called `name` (`NAME_VERSION_ARCH.deb`). */
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

  async #entry(file: string): Promise<RpmEntry | null> {
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) return null;
    const identity = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
    const known = this.#headers.get(file);
    if (known?.identity === identity) return known.entry;
    const entry = readEntry(file);
    this.#headers.set(file, { identity, entry });
    return entry;
  }
}

/** What an RPM's header says about it; null when it is not a readable RPM. */
async function readEntry(file: string): Promise<RpmEntry | null> {
  const fh = await open(file, 'r').catch(() => null);
  if (!fh) return null;
  try {
    const { pkg } = await readRpmHeaders(fh);
    return { file, name: pkg.name, epoch: pkg.epoch, version: pkg.version, release: pkg.release, arch: pkg.arch };
  } catch (err) {
    if (err instanceof RpmFormatError) return null;
    throw err;
  } finally {
    await fh.close();
  }
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

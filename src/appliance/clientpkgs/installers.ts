// The installer scripts of diskful nodes (seed: "Pre-Installer Script", "Installer Scripts"): which one a
// node gets for what it is, and the head node's URL filled into it. Request data never enters a script:
// the only value substituted is the head URL, re-checked here, into the one line `CW_HEAD=`.
import { open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { headUrlOf } from '../boot/ipxe/script.js';

/** The installers shipped with the product (`rootfs/clientpkgs/installers/`), same depth from src/ and dist/. */
export const SHIPPED_INSTALLERS_DIR = fileURLToPath(new URL('../../../rootfs/clientpkgs/installers/', import.meta.url));

export const ARCHES = ['x86_64', 'aarch64'] as const;
export const OSES = ['rhel', 'debian', 'cumulus', 'sonic'] as const;
export const PKGS = ['rpm', 'deb', 'tar'] as const;
export type Arch = (typeof ARCHES)[number];
export type Os = (typeof OSES)[number];
export type Pkg = (typeof PKGS)[number];

/** What a node is, as far as known: an absent field is "unknown". */
export interface Platform {
  arch?: Arch;
  os?: Os;
  pkg?: Pkg;
}

/** The value the pre-installer sends for a feature it could not determine. */
export const UNKNOWN = 'unknown';

/** An admin's installer larger than this is refused (the shipped ones are a few KiB). */
export const INSTALLER_MAX_BYTES = 1024 * 1024;

/** The line of every installer that receives the head URL; the script must contain it exactly once. */
const HEAD_LINE_RE = /^CW_HEAD=$/m;

export class InstallerError extends Error {}

function pick<T extends string>(allowed: readonly T[], value: unknown, field: string): T | undefined {
  if (value === undefined || value === UNKNOWN) return undefined;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : typeof value;
  throw new InstallerError(`${field}: ${shown} is not one of ${allowed.join(', ')} (or ${UNKNOWN})`);
}

/** The `?arch=&os=&pkg=` of a GET, validated; throws InstallerError naming the field that is wrong. */
export function platformOfQuery(query: Record<string, unknown>): Platform {
  const platform: Platform = {};
  const arch = pick(ARCHES, query.arch, 'arch');
  const os = pick(OSES, query.os, 'os');
  const pkg = pick(PKGS, query.pkg, 'pkg');
  if (arch) platform.arch = arch;
  if (os) platform.os = os;
  if (pkg) platform.pkg = pkg;
  return platform;
}

/** What the pre-installer detected and posts (all strings it read from the system, checked by the schema). */
export interface Detected {
  /** `uname -m` */
  arch?: string;
  /** /etc/os-release ID */
  os_id?: string;
  /** /etc/os-release ID_LIKE (space-separated) */
  os_like?: string;
  /** Package tools found on PATH. */
  tools?: string[];
  /** `systemd` or `other` */
  init?: string;
}

const RHEL_LIKE = new Set(['rhel', 'centos', 'rocky', 'almalinux', 'fedora', 'ol', 'redhat', 'scientific', 'amzn']);
const DEBIAN_LIKE = new Set(['debian', 'ubuntu', 'raspbian', 'linuxmint']);

/**
 * The platform of a pre-installer's report. Unknown values are simply unknown (a node may be anything);
 * the package type follows the tools the node has: rpm tools → rpm, dpkg → deb, neither → tar.
 * Example: {arch:'armv7l', os_id:'opensuse', tools:['rpm']} → {pkg:'rpm'}.
 */
export function platformOfDetected(detected: Detected): Platform {
  const platform: Platform = {};
  const arch = detected.arch === 'arm64' ? 'aarch64' : detected.arch === 'amd64' ? 'x86_64' : detected.arch;
  if (arch === 'x86_64' || arch === 'aarch64') platform.arch = arch;
  const words = [detected.os_id ?? '', ...(detected.os_like ?? '').split(' ')].map((w) => w.toLowerCase()).filter(Boolean);
  const id = words[0] ?? '';
  if (id === 'cumulus-linux' || id === 'cumulus') platform.os = 'cumulus';
  else if (id === 'sonic') platform.os = 'sonic';
  else if (words.some((w) => RHEL_LIKE.has(w))) platform.os = 'rhel';
  else if (words.some((w) => DEBIAN_LIKE.has(w))) platform.os = 'debian';
  const tools = new Set(detected.tools ?? []);
  const hasRpm = tools.has('rpm') || tools.has('dnf') || tools.has('yum');
  const hasDpkg = tools.has('dpkg') || tools.has('apt-get');
  if (hasRpm && (!hasDpkg || platform.os === 'rhel')) platform.pkg = 'rpm';
  else if (hasDpkg) platform.pkg = 'deb';
  else platform.pkg = 'tar';
  return platform;
}

/**
 * The installer file names for a platform, most specific first: `OS-ARCH-PKG.sh`, `OS-PKG.sh`,
 * `ARCH-PKG.sh`, `PKG.sh`. Without a package type it follows the OS (rhel → rpm, the others → deb), and
 * with nothing known at all it is the TAR installer, which needs neither rpm nor dpkg.
 */
export function installerNames(platform: Platform): string[] {
  const pkg: Pkg = platform.pkg ?? (platform.os === 'rhel' ? 'rpm' : platform.os ? 'deb' : 'tar');
  const { arch, os } = platform;
  const names: string[] = [];
  if (os && arch) names.push(`${os}-${arch}-${pkg}.sh`);
  if (os) names.push(`${os}-${pkg}.sh`);
  if (arch) names.push(`${arch}-${pkg}.sh`);
  names.push(`${pkg}.sh`);
  return names;
}

export const PREINSTALLER_NAME = 'preinstall.sh';

/** The functions every installer shares, kept once in the source (`lib/` holds no installer a node can ask for). */
export const COMMON_NAME = 'lib/common.sh';

/** The line an installer marks the place of the shared functions with (at most once). */
const COMMON_LINE_RE = /^# @cw-common$/gm;

/**
 * Puts the shared functions (`common`, without its leading comment block) in place of the installer's
 * `# @cw-common` line, so a node gets one self-contained script. A script without the line is unchanged.
 */
export function includeCommon(script: string, common: string, name: string): string {
  const marks = script.match(COMMON_LINE_RE) ?? [];
  if (marks.length === 0) return script;
  if (marks.length > 1) throw new InstallerError(`installer ${name} must contain the line "# @cw-common" at most once (found ${marks.length})`);
  const lines = common.split('\n');
  const body = lines.slice(lines.findIndex((line) => !line.startsWith('#'))).join('\n').replace(/\n+$/, '');
  if (/^CW_HEAD=/m.test(body)) throw new InstallerError(`${COMMON_NAME} must not set CW_HEAD`);
  // A function replacement: `$&`-style patterns in the shared text are not interpreted.
  return script.replace(COMMON_LINE_RE, () => body);
}

/** Fills the head URL into the `CW_HEAD=` line; the URL must be what headUrlOf accepts (http://HOST[:PORT]). */
export function fillHead(script: string, head: string, name: string): string {
  if (typeof head !== 'string' || !head.startsWith('http://') || headUrlOf(head.slice('http://'.length)) !== head) {
    throw new InstallerError(`head URL ${JSON.stringify(String(head).slice(0, 80))} is not http://HOST[:PORT]`);
  }
  const lines = script.match(/^CW_HEAD=$/gm) ?? [];
  if (lines.length !== 1) throw new InstallerError(`installer ${name} must contain the line "CW_HEAD=" exactly once (found ${lines.length})`);
  return script.replace(HEAD_LINE_RE, `CW_HEAD='${head}'`);
}

/** The text of DIR/NAME if it is a regular file of acceptable size; null if there is none. */
async function readInstaller(dir: string, name: string): Promise<string | null> {
  let handle;
  try {
    // O_NONBLOCK: a FIFO put there cannot hang the open; fstat then refuses it.
    handle = await open(join(dir, name), constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    if (code === 'ELOOP') throw new InstallerError(`installer ${name} is a symbolic link; put the file itself there`);
    throw err;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new InstallerError(`installer ${name} is not a regular file`);
    if (info.size > INSTALLER_MAX_BYTES) throw new InstallerError(`installer ${name} is larger than ${INSTALLER_MAX_BYTES} bytes`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

export interface Installer {
  name: string;
  /** `admin` (STORAGE/clientpkgs/installers) or `shipped`. */
  origin: 'admin' | 'shipped';
  text: string;
}

/**
 * The installer for a platform (or the pre-installer for `null`) with the head URL filled in: for each
 * name from the most specific on, the admin's directory first, then the shipped one.
 */
export async function findInstaller(
  platform: Platform | null,
  head: string,
  dirs: { adminDir?: string | undefined; shippedDir?: string },
): Promise<Installer | null> {
  const names = platform === null ? [PREINSTALLER_NAME] : installerNames(platform);
  const shippedDir = dirs.shippedDir ?? SHIPPED_INSTALLERS_DIR;
  for (const name of names) {
    for (const [origin, dir] of [
      ['admin', dirs.adminDir],
      ['shipped', shippedDir],
    ] as const) {
      if (!dir) continue;
      const text = await readInstaller(dir, name);
      if (text === null) continue;
      const common = await readInstaller(shippedDir, COMMON_NAME);
      if (common === null) throw new InstallerError(`${COMMON_NAME} is missing from ${shippedDir}`);
      return { name, origin, text: fillHead(includeCommon(text, common, name), head, name) };
    }
  }
  return null;
}

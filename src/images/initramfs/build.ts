// Builds the node initramfs from an image root: busybox (static, from the host), the kernel modules the
// boot needs with their dependencies (modules.dep), depmod's index for busybox modprobe, our /init and
// udhcpc script; written as gzip-compressed newc cpio.
import { execa } from 'execa';
import { constants } from 'node:fs';
import { access, lstat, mkdir, mkdtemp, readFile, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { CpioArchive } from './cpio.js';
import { NETWORK_MODULES, REQUIRED_MODULES, moduleClosure, parseModulesBuiltin, parseModulesDep, type ModuleInfo } from './modules.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Where Debian's busybox-static installs its binary. */
export const DEFAULT_BUSYBOX = '/bin/busybox';

/** The node scripts shipped in the package (`rootfs/node/`), same depth from src/ and dist/. */
export const NODE_SCRIPTS_DIR = fileURLToPath(new URL('../../../rootfs/node/', import.meta.url));

export interface BuildInitramfsOptions {
  /** An unpacked image root holding `lib/modules/KVER` (or `usr/lib/modules/KVER`). */
  rootDir: string;
  /** Kernel release; default: the only (or newest) one under the root's modules directory. */
  kver?: string;
  /** Static busybox to ship (default /bin/busybox, from Debian's busybox-static). */
  busybox?: string;
  /** Where to write the gzip-compressed cpio. */
  out: string;
  /** Modules wanted on top of the defaults. */
  extraModules?: readonly string[];
  /** Directory with init, init-functions.sh and udhcpc.script (default: the package's rootfs/node). */
  scriptsDir?: string;
  /** Progress lines. */
  onProgress?: (line: string) => void;
}

export interface InitramfsResult {
  out: string;
  kver: string;
  /** The image's kernel for this release (`ROOT/boot/vmlinuz-KVER`). */
  kernel: string;
  /** Compressed size in bytes. */
  size: number;
  /** Modules shipped, in load order (dependencies included). */
  modules: string[];
  /** Modules /init may load: the required ones always, network drivers by hardware (modalias). */
  loaded: string[];
  /** Wanted modules that are built into the kernel. */
  builtin: string[];
  /** Wanted network drivers this kernel does not have (normal: each kernel has a subset). */
  absent: string[];
}

/** Thrown for expected problems with the inputs (missing kernel, dynamic busybox, ...). */
export class InitramfsError extends Error {
  override readonly name = 'InitramfsError';
}

/** Builds the initramfs; see BuildInitramfsOptions. */
export async function buildInitramfs(opts: BuildInitramfsOptions): Promise<InitramfsResult> {
  const progress = opts.onProgress ?? (() => {});
  const root = opts.rootDir;
  const kver = opts.kver ?? (await defaultKernelRelease(root));
  const modulesDir = await findModulesDir(root, kver);
  const kernel = await findKernel(root, kver, modulesDir);
  const busybox = opts.busybox ?? DEFAULT_BUSYBOX;
  const scripts = opts.scriptsDir ?? NODE_SCRIPTS_DIR;

  const busyboxBytes = await readFile(busybox).catch(() => {
    throw new InitramfsError(`${busybox}: no busybox there (install Debian's busybox-static)`);
  });
  if (!isStaticElf(busyboxBytes)) {
    throw new InitramfsError(`${busybox} is not a statically linked program (install Debian's busybox-static)`);
  }

  // Modules: what is wanted, minus what the kernel has built in, plus dependencies.
  const depText = await readModulesDep(root, modulesDir, kver);
  const available = parseModulesDep(depText);
  const builtinText = await readFile(join(modulesDir, 'modules.builtin'), 'utf8').catch(() => '');
  const builtinNames = parseModulesBuiltin(builtinText);
  const wanted = [...REQUIRED_MODULES, ...NETWORK_MODULES, ...(opts.extraModules ?? [])].map((m) => m.replace(/-/g, '_'));
  const unique = [...new Set(wanted)];
  const builtin = unique.filter((m) => builtinNames.has(m) && !available.has(m));
  const toLoad = unique.filter((m) => available.has(m));
  const closure = moduleClosure(available, toLoad);
  const requiredMissing = REQUIRED_MODULES.filter((m) => !available.has(m) && !builtinNames.has(m));
  const extraMissing = (opts.extraModules ?? []).map((m) => m.replace(/-/g, '_')).filter((m) => !available.has(m) && !builtinNames.has(m));
  if (requiredMissing.length > 0 || extraMissing.length > 0) {
    throw new InitramfsError(`kernel ${kver} has neither a module nor built-in support for: ${[...requiredMissing, ...extraMissing].join(', ')}`);
  }
  if (closure.dangling.length > 0) {
    throw new InitramfsError(`modules.dep of ${kver} names modules it does not list: ${closure.dangling.join(', ')} (run depmod in the image)`);
  }
  const absent = unique.filter((m) => !available.has(m) && !builtinNames.has(m));
  progress(`modules: ${closure.order.length} files for ${toLoad.join(' ')}`);

  const archive = new CpioArchive();
  for (const d of ['dev', 'proc', 'sys', 'run', 'tmp', 'newroot', 'etc/cw', 'root']) archive.dir(d);
  archive.chardev('dev/console', 5, 1, 0o600);
  archive.chardev('dev/null', 1, 3, 0o666);
  archive.dir('tmp', 0o1777);

  // busybox and the applets (as symlinks, at the paths busybox itself names).
  archive.file('bin/busybox', busyboxBytes, 0o755);
  for (const applet of await busyboxApplets(busybox)) {
    if (applet === 'bin/busybox' || archive.has(applet)) continue;
    archive.symlink(applet, relative(dirname(`/${applet}`), '/bin/busybox'));
  }

  const readScript = async (name: string): Promise<Buffer> =>
    readFile(join(scripts, name)).catch(() => {
      throw new InitramfsError(`node script ${join(scripts, name)} is missing`);
    });
  archive.file('init', await readScript('init'), 0o755);
  archive.file('usr/lib/cw/init-functions.sh', await readScript('init-functions.sh'), 0o644);
  archive.file('usr/share/udhcpc/cw.script', await readScript('udhcpc.script'), 0o755);
  const required = toLoad.filter((m) => !NETWORK_MODULES.includes(m));
  const network = toLoad.filter((m) => NETWORK_MODULES.includes(m));
  archive.file('etc/cw/modules', Buffer.from(required.map((m) => `${m}\n`).join('')), 0o644);
  archive.file('etc/cw/modules-net', Buffer.from(network.map((m) => `${m}\n`).join('')), 0o644);
  archive.file('etc/cw/kernel-release', Buffer.from(`${kver}\n`), 0o644);

  // Module files, decompressed (busybox modprobe may lack xz/zstd), indexed by depmod in a staging root.
  const staging = await mkdtemp(join(tmpdir(), 'cw-initramfs-'));
  try {
    const stagedModules = join(staging, 'lib', 'modules', kver);
    await mkdir(stagedModules, { recursive: true });
    for (const info of closure.order) {
      const plainPath = info.path.replace(/\.ko\.[a-z0-9]+$/, '.ko');
      const bytes = await readModule(modulesDir, info);
      await mkdir(dirname(join(stagedModules, plainPath)), { recursive: true });
      await writeFile(join(stagedModules, plainPath), bytes);
    }
    for (const meta of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
      const bytes = await readFile(join(modulesDir, meta)).catch(() => undefined);
      if (bytes) await writeFile(join(stagedModules, meta), bytes);
    }
    await runDepmod(staging, kver);
    for (const file of await walk(join(staging, 'lib'))) {
      const rel = relative(staging, file).split(sep).join('/');
      archive.file(rel, await readFile(file), 0o644);
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }

  const cpio = archive.toBuffer();
  const compressed = await gzipAsync(cpio, { level: 9 });
  await mkdir(dirname(opts.out), { recursive: true });
  await writeFile(opts.out, compressed, { mode: 0o644 });
  progress(`initramfs: ${opts.out} (${compressed.length} bytes, ${cpio.length} unpacked)`);
  return {
    out: opts.out,
    kver,
    kernel,
    size: compressed.length,
    modules: closure.order.map((m) => m.name),
    loaded: toLoad,
    builtin,
    absent,
  };
}

/** Kernel releases of an image root: the directories under its modules directory, newest first. */
export async function listKernelReleases(root: string): Promise<string[]> {
  const found = new Set<string>();
  for (const base of ['usr/lib/modules', 'lib/modules']) {
    const dir = join(root, base);
    if (!(await isInside(root, dir))) continue;
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (await exists(join(dir, name, 'kernel'))) found.add(name);
    }
  }
  return [...found].sort(compareReleases).reverse();
}

async function defaultKernelRelease(root: string): Promise<string> {
  const releases = await listKernelReleases(root);
  if (releases.length === 0) throw new InitramfsError(`${root} has no kernel modules (lib/modules/*); install a kernel in the image`);
  return releases[0] as string;
}

/** `ROOT/usr/lib/modules/KVER` or `ROOT/lib/modules/KVER`, never outside the root (absolute symlinks). */
export async function findModulesDir(root: string, kver: string): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$/.test(kver)) throw new InitramfsError(`invalid kernel release "${kver}"`);
  for (const base of ['usr/lib/modules', 'lib/modules']) {
    const dir = join(root, base, kver);
    if ((await exists(dir)) && (await isInside(root, dir))) return dir;
  }
  const known = await listKernelReleases(root);
  throw new InitramfsError(`${root} has no modules for kernel ${kver}${known.length ? ` (it has: ${known.join(', ')})` : ''}`);
}

/** The kernel of a release: `ROOT/boot/vmlinuz-KVER`, else `MODULES/vmlinuz` (Fedora layout). */
export async function findKernel(root: string, kver: string, modulesDir?: string): Promise<string> {
  const candidates = [join(root, 'boot', `vmlinuz-${kver}`)];
  if (modulesDir) candidates.push(join(modulesDir, 'vmlinuz'));
  for (const c of candidates) {
    if ((await exists(c)) && (await isInside(root, c)) && (await lstat(await realpath(c))).isFile()) return c;
  }
  throw new InitramfsError(`${root} has no kernel for ${kver} (looked for boot/vmlinuz-${kver})`);
}

/** modules.dep of the image, or depmod's answer for it when the image has none (an unpacked .deb). */
async function readModulesDep(root: string, modulesDir: string, kver: string): Promise<string> {
  const text = await readFile(join(modulesDir, 'modules.dep'), 'utf8').catch(() => undefined);
  if (text !== undefined) return text;
  try {
    // -n prints every index to stdout without touching the image; the modules.dep lines are `x.ko: ...`.
    const r = await execa('depmod', ['-n', '-b', root, kver], { maxBuffer: 256 * 1024 * 1024 });
    return r.stdout;
  } catch (err) {
    throw new InitramfsError(`${modulesDir} has no modules.dep and depmod could not make one: ${shortError(err)} (install kmod)`);
  }
}

async function readModule(modulesDir: string, info: ModuleInfo): Promise<Buffer> {
  const file = join(modulesDir, info.path);
  if (info.path.endsWith('.ko')) return readFile(file);
  if (info.path.endsWith('.ko.gz')) return gunzipAsync(await readFile(file));
  const tool = info.path.endsWith('.ko.xz') ? 'xz' : info.path.endsWith('.ko.zst') ? 'zstd' : undefined;
  if (!tool) throw new InitramfsError(`${info.path}: unknown module compression`);
  try {
    const r = await execa(tool, ['-dc', file], { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 });
    return Buffer.from(r.stdout);
  } catch (err) {
    throw new InitramfsError(`cannot decompress ${info.path}: ${shortError(err)} (install ${tool === 'xz' ? 'xz-utils' : 'zstd'})`);
  }
}

async function runDepmod(staging: string, kver: string): Promise<void> {
  try {
    await execa('depmod', ['-b', staging, kver]);
  } catch (err) {
    throw new InitramfsError(`depmod failed: ${shortError(err)} (install kmod)`);
  }
}

/** `bin/sh`, `sbin/modprobe`, ... as the given busybox installs its applets. */
export async function busyboxApplets(busybox: string): Promise<string[]> {
  let stdout: string;
  try {
    stdout = (await execa(busybox, ['--list-full'])).stdout;
  } catch (err) {
    throw new InitramfsError(`${busybox} --list-full failed: ${shortError(err)}`);
  }
  return stdout
    .split('\n')
    .map((l) => l.trim().replace(/^\/+/, ''))
    .filter((l) => /^[a-z0-9_./[\]-]+$/i.test(l) && !l.includes('..'));
}

/** True for an ELF executable without a program interpreter (PT_INTERP), i.e. statically linked. */
export function isStaticElf(bytes: Buffer): boolean {
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = bytes[4] === 2;
  const le = bytes[5] === 1;
  const u16 = (o: number): number => (le ? bytes.readUInt16LE(o) : bytes.readUInt16BE(o));
  const u32 = (o: number): number => (le ? bytes.readUInt32LE(o) : bytes.readUInt32BE(o));
  const phoff = is64 ? Number(le ? bytes.readBigUInt64LE(32) : bytes.readBigUInt64BE(32)) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > bytes.length) return false;
    if (u32(off) === 3) return false;
  }
  return true;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(p)));
    else if (entry.isFile()) out.push(p);
  }
  return out.sort();
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether `p` (symlinks resolved) is inside `root` (symlinks resolved). */
async function isInside(root: string, p: string): Promise<boolean> {
  try {
    const r = await realpath(root);
    const q = await realpath(p);
    return q === r || q.startsWith(r + sep);
  } catch {
    return false;
  }
}

/** Orders `6.1.0-9-amd64` before `6.1.0-18-amd64` (numbers compared as numbers). */
export function compareReleases(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

function shortError(err: unknown): string {
  const e = err as { shortMessage?: string; stderr?: unknown; message?: string };
  const stderr = typeof e.stderr === 'string' ? e.stderr.trim().split('\n').slice(-1)[0] : '';
  return stderr || e.shortMessage || e.message || String(err);
}

// cw-modimg: make and change node images on the admin's host, in the workspace, then upload them.
// `cw-modimg --create --set-name mpiImage --install openmpi --upload`.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { Agent, request } from 'undici';
import { buildDebootstrapRoot, DEFAULT_DEBIAN_MIRROR, DEFAULT_DEBIAN_RELEASE, cleanAptCaches } from '../../images/builders/debootstrap.js';
import { buildDnfRoot } from '../../images/builders/dnf.js';
import { importDockerArchive, parseImportSource, saveEngineImage } from '../../images/builders/oci.js';
import type { DistroSpec } from '../../images/builders/common.js';
import { withChroot, type ChrootSession } from '../../images/chroot.js';
import { createCwsquash, extractCwsquash, sha256File, type Compression } from '../../images/cwsquash/index.js';
import { installNodeFiles } from '../../images/node-files.js';
import {
  Workspace,
  checkImageName,
  checkUploadTarget,
  exists,
  staleEntries,
  type ManifestEntry,
  type RemoteImage,
} from '../../images/workspace.js';
import { ApiError, describeNetworkError } from '../common/client/api-client.js';
import { ExitError, errorMessage } from '../../lib/errors.js';
import { loadSettings, type SslVerify } from '../common/client/settings.js';
import { clip, type ParsedArgs } from '../common/args.js';
import { makeContext, type ToolContext, type ToolIo } from '../common/context.js';
import { MODIMG_USAGE, parseModimgArgs, type ModimgArgs } from './args.js';
import { createReporter, formatSeconds, humanBytes, type Reporter, type StepHandle } from './report.js';

/** The API's upload limit (PUT /image/:id/content). */
const UPLOAD_LIMIT = 512 * 1024 * 1024;

/** Left out of packed images (seed 003: temporary and package-cache directories are not repacked). */
export const PACK_EXCLUDES = ['tmp/*', 'var/tmp/*', 'var/cache/apt/archives/*.deb', 'var/cache/yum/*', 'var/cache/dnf/*', 'etc/.resolv.conf.cw-saved'];

export interface ModimgIo extends ToolIo {
  /** Effective uid (default process.getuid()): cw-modimg needs root. */
  uid?: number;
  /** Whether questions may be asked and progress drawn in place (default: stdin and stderr are terminals). */
  interactive?: boolean;
  /** Answers a yes/no question (default: read a line from the terminal). */
  ask?: (question: string, defaultYes: boolean) => Promise<boolean>;
}

/** `cw-modimg ARGS...` without the process boundary. */
export async function modimg(argv: readonly string[], io: ModimgIo = {}): Promise<void> {
  const args = parseModimgArgs(argv);
  const out = io.out ?? ((text: string) => void process.stdout.write(text));
  if (args.help) {
    out(`${MODIMG_USAGE}\n`);
    return;
  }
  const uid = io.uid ?? process.getuid?.() ?? 0;
  if (uid !== 0) throw new ExitError('cw-modimg must run as root: it mounts, chroots and keeps file ownership inside images (try sudo)');
  const parsed: ParsedArgs = {
    common: { all: args.all, detail: 0, format: 'plain', human: false, showUids: false, help: false, ...(args.baseUrl ? { baseUrl: args.baseUrl } : {}) },
    options: new Map(),
    words: [],
  };
  const ctx = makeContext('cw-modimg', parsed, io);
  let settings;
  try {
    settings = loadSettings({ home: ctx.home, env: ctx.env });
  } catch (err) {
    throw new ExitError(errorMessage(err));
  }
  const interactive = io.interactive ?? Boolean(process.stdin.isTTY && process.stderr.isTTY);
  const run = new ModimgRun(ctx, new Workspace(settings.workspace), args, {
    interactive,
    sslVerify: settings.sslVerify,
    ask: io.ask ?? askOnTerminal,
    reporter: createReporter({ write: ctx.err, isTTY: interactive }),
  });
  try {
    await run.workspace.ensure();
    await run.workspace.withLock(() => run.execute());
  } finally {
    await ctx.close();
  }
}

async function askOnTerminal(question: string, defaultYes: boolean): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(`${question} ${defaultYes ? '[Y/n]' : '[y/N]'} `)).trim().toLowerCase();
    return answer === '' ? defaultYes : answer.startsWith('y');
  } finally {
    rl.close();
  }
}

interface RunOptions {
  interactive: boolean;
  sslVerify: SslVerify;
  ask: (question: string, defaultYes: boolean) => Promise<boolean>;
  reporter: Reporter;
}

type PackageManager = 'apt' | 'dnf' | 'yum';

/** One invocation: the steps of the command line, in their fixed order. */
class ModimgRun {
  readonly workspace: Workspace;
  private readonly r: Reporter;
  private remoteList: RemoteImage[] | undefined;

  constructor(
    private readonly ctx: ToolContext,
    workspace: Workspace,
    private readonly args: ModimgArgs,
    private readonly opts: RunOptions,
  ) {
    this.workspace = workspace;
    this.r = opts.reporter;
  }

  private say(text: string): void {
    this.r.info(`cw-modimg: ${text}`);
  }

  async execute(): Promise<void> {
    const a = this.args;
    if (a.ls) return this.list();
    if (a.delete) return this.deleteLocal();
    let name: string;
    if (a.create || a.importFrom) {
      name = a.setName as string;
      checkImageName(name);
      if (a.create) await this.create(name, a.create.distro);
      else await this.importImage(name, a.importFrom as string);
    } else {
      name = a.image as string;
      checkImageName(name);
      await this.evictStale();
      if (a.freshen) {
        const had = await this.workspace.entry(name);
        if (had) {
          await this.workspace.remove(name);
          this.say(`dropped the local copy of ${name}${had.modified ? ' and its unpacked changes' : ''} (--freshen)`);
        }
      }
    }
    const modifies = a.copyin.length > 0 || a.install.length > 0 || a.exec.length > 0 || a.chroot;
    const needRoot = modifies || a.query !== undefined;
    let entry = await this.open(name, needRoot);
    if (modifies) {
      const kept = await this.modify(name, entry);
      if (!kept) return;
      entry = kept;
    }
    if (a.query !== undefined) await this.query(name, entry, a.query);
    entry = await this.packIfWanted(name, entry);
    if (a.upload) await this.upload(name, entry);
  }

  // ---------------------------------------------------------------------------------------------
  // Local and remote images

  private async remoteImages(): Promise<RemoteImage[]> {
    if (!this.remoteList) {
      const list = await this.ctx.api().get<unknown>('/images');
      this.remoteList = Array.isArray(list) ? (list as RemoteImage[]) : [];
    }
    return this.remoteList;
  }

  private async remoteImage(name: string): Promise<RemoteImage | undefined> {
    try {
      return await this.ctx.api().get<RemoteImage>(`/image/${encodeURIComponent(name)}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Drops clean local copies older than an hour that equal the head node's (seed 003). */
  private async evictStale(): Promise<void> {
    const manifest = await this.workspace.load();
    if (Object.keys(manifest.images).length === 0) return;
    let remote: RemoteImage[];
    try {
      remote = await this.remoteImages();
    } catch (err) {
      this.ctx.err(`WARNING: cannot check local copies against the head node: ${errorMessage(err)}\n`);
      return;
    }
    for (const name of await this.workspace.evict(staleEntries(manifest, remote, Date.now()))) {
      this.say(`evicted the local copy of ${name} (older than an hour, identical to the head node's)`);
    }
  }

  private async list(): Promise<void> {
    await this.evictStale();
    const manifest = await this.workspace.load();
    const lines = [`Local images (${this.workspace.dir})`];
    const names = Object.keys(manifest.images).sort();
    if (names.length === 0) lines.push('  (none)');
    for (const n of names) {
      const e = manifest.images[n] as ManifestEntry;
      const size = e.file ? await stat(this.workspace.abs(e.file)).then((s) => humanBytes(s.size), () => 'file missing') : 'not packed';
      const notes = [e.uid ? `uid ${e.uid}` : 'not uploaded', size, `updated ${e.updated}`];
      if (e.root) notes.push('unpacked');
      if (e.modified) notes.push('changed since packing');
      lines.push(`  ${n}  (${notes.join(', ')})`);
    }
    this.ctx.out(`${lines.join('\n')}\n`);
    const remote = [...(await this.remoteImages())].sort((x, y) => x.name.localeCompare(y.name));
    const rlines = ['Head node images'];
    if (remote.length === 0) rlines.push('  (none)');
    for (const img of remote) {
      const content = img.checksum ? `${humanBytes(img.size ?? 0)}, ${img.checksum.slice(0, 19)}…` : 'no content';
      rlines.push(`  ${img.name}  (${content})`);
    }
    this.ctx.out(`${rlines.join('\n')}\n`);
  }

  private async deleteLocal(): Promise<void> {
    if (this.args.all) {
      const names = Object.keys((await this.workspace.load()).images).sort();
      for (const n of names) await this.workspace.remove(n);
      this.ctx.out(names.length === 0 ? 'No local images\n' : `Deleted local images: ${names.join(', ')}\n`);
      return;
    }
    const name = this.args.image as string;
    checkImageName(name);
    if (!(await this.workspace.remove(name))) throw new ExitError(`no local image ${name} in ${this.workspace.dir}`);
    this.ctx.out(`Deleted local image ${name}\n`);
  }

  /** The manifest entry of `name`, downloading the head node's image when there is no local copy. */
  private async open(name: string, needRoot: boolean): Promise<ManifestEntry> {
    let entry = await this.workspace.entry(name);
    if (!entry) entry = await this.download(name);
    if (needRoot && !(entry.root && (await exists(this.workspace.abs(entry.root))))) {
      if (!entry.file || !(await exists(this.workspace.abs(entry.file)))) {
        throw new ExitError(`local image ${name} has neither an image file nor an unpacked root; run cw-modimg -i ${name} --delete`);
      }
      const root = this.workspace.rootPath(name);
      const partial = `${root}.partial`;
      await rm(partial, { recursive: true, force: true });
      const file = this.workspace.abs(entry.file);
      await this.r.step(`Unpacking ${name}`, (s) => extractCwsquash(file, partial, { onProgress: (p) => s.percent(p.percent) }));
      await rm(root, { recursive: true, force: true });
      await rename(partial, root);
      entry = { ...entry, root: `roots/${name}` };
      await this.workspace.put(name, { ...entry, updated: entry.updated });
    }
    return entry;
  }

  /** Downloads the head node's image `name` (nginx serves it at /images/<uid>.img) and checks it. */
  private async download(name: string): Promise<ManifestEntry> {
    const remote = await this.remoteImage(name);
    if (!remote) throw new ExitError(`no image ${name} on the head node or in the workspace ${this.workspace.dir}`);
    if (!remote.checksum) {
      throw new ExitError(`image ${name} on the head node has no content yet; make it with cw-modimg --create --set-name ${name} --upload`);
    }
    const url = imageUrl(this.ctx.api().baseUrl, remote.uid);
    const fileRel = this.workspace.fileName(name, remote.uid);
    const dest = this.workspace.abs(fileRel);
    const part = `${dest}.${randomBytes(4).toString('hex')}.part`;
    const dispatcher = new Agent({ connect: { rejectUnauthorized: this.opts.sslVerify === 'true' }, bodyTimeout: 300_000 });
    try {
      await this.r.step(`Downloading ${name}`, async (s) => {
        let res;
        try {
          res = await request(url, { dispatcher });
        } catch (err) {
          throw new ExitError(`cannot download ${url}: ${describeNetworkError(err)}`);
        }
        if (res.statusCode !== 200) {
          await res.body.dump();
          throw new ExitError(`cannot download ${url}: HTTP ${res.statusCode}`);
        }
        const total = Number(res.headers['content-length'] ?? remote.size ?? 0);
        let done = 0;
        const meter = new Transform({
          transform(chunk: Buffer, _e, cb) {
            done += chunk.length;
            if (total > 0) s.percent((done / total) * 100, `${humanBytes(done)} of ${humanBytes(total)}`);
            cb(null, chunk);
          },
        });
        await pipeline(res.body, meter, createWriteStream(part, { mode: 0o600 }));
      });
      const sum = await sha256File(part);
      if (sum !== remote.checksum) throw new ExitError(`downloaded image ${name} has checksum ${sum} but the head node says ${remote.checksum}; try again`);
      await rename(part, dest);
    } finally {
      await rm(part, { force: true });
      await dispatcher.close();
    }
    return this.workspace.put(name, { uid: remote.uid, checksum: remote.checksum, file: fileRel });
  }

  // ---------------------------------------------------------------------------------------------
  // Making roots

  private async refuseExisting(name: string): Promise<void> {
    if (await this.workspace.entry(name)) {
      throw new ExitError(`a local image ${name} already exists; change it with -i ${name}, or remove it with cw-modimg -i ${name} --delete`);
    }
  }

  private async create(name: string, distroName: string | undefined): Promise<void> {
    await this.refuseExisting(name);
    const distro = await this.resolveDistro(distroName);
    await this.buildRoot(name, `Building ${name} from ${distro.name} (${distro.packageManager} ${distro.release || ''})`.replace(' )', ')'), async (dir, s) => {
      if (distro.packageManager === 'apt') await buildDebootstrapRoot(distro, dir, (l) => s.line(l));
      else await buildDnfRoot(distro, dir, (l) => s.line(l));
    });
  }

  private async importImage(name: string, spec: string): Promise<void> {
    await this.refuseExisting(name);
    const source = parseImportSource(spec);
    await this.buildRoot(name, `Importing ${name} from ${spec}`, async (dir, s) => {
      if (source.kind === 'archive') {
        await importDockerArchive(source.file, dir, this.workspace.dir, (l) => s.line(l));
        return;
      }
      const tarball = this.workspace.abs(`.import-${randomBytes(4).toString('hex')}.tar`);
      try {
        await saveEngineImage(source.image, tarball, (l) => s.line(l));
        await importDockerArchive(tarball, dir, this.workspace.dir, (l) => s.line(l), source.image);
      } finally {
        await rm(tarball, { force: true });
      }
    });
  }

  /** Builds into `roots/NAME.partial`, adds the node files, then moves it into place and records it. */
  private async buildRoot(name: string, label: string, build: (dir: string, s: StepHandle) => Promise<void>): Promise<void> {
    const root = this.workspace.rootPath(name);
    const partial = `${root}.partial`;
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial, { recursive: true, mode: 0o755 });
    try {
      await this.r.step(label, (s) => build(partial, s));
      await installNodeFiles(partial);
      this.say(`installed the node agent into ${name}`);
      await rm(root, { recursive: true, force: true });
      await rename(partial, root);
    } catch (err) {
      await rm(partial, { recursive: true, force: true });
      throw err;
    }
    const now = this.workspace.stamp();
    await this.workspace.put(name, { uid: null, checksum: null, file: null, root: `roots/${name}`, modified: now, updated: now });
  }

  /** The distro to build from: named, else the cluster's default, else Debian bookworm. */
  private async resolveDistro(name: string | undefined): Promise<DistroSpec> {
    const api = this.ctx.api();
    let distroName = name;
    if (distroName === undefined) {
      const cluster = await api.get<{ default_distro?: string | null }>('/cluster');
      distroName = cluster?.default_distro ?? undefined;
      if (distroName === undefined) {
        this.say(`the cluster has no default distro: using Debian ${DEFAULT_DEBIAN_RELEASE} from ${DEFAULT_DEBIAN_MIRROR}`);
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

  // ---------------------------------------------------------------------------------------------
  // Changing roots

  /** Runs --copyin, --install, --exec and --chroot in one chroot session; null when changes were discarded. */
  private async modify(name: string, entry: ManifestEntry): Promise<ManifestEntry | null> {
    const root = this.workspace.abs(entry.root as string);
    const changed: ManifestEntry = { ...entry, modified: entry.modified ?? this.workspace.stamp() };
    await this.workspace.put(name, { ...changed, updated: entry.updated });
    const a = this.args;
    await withChroot(root, async (s) => {
      for (const c of a.copyin) await this.copyIn(s, c.src, c.dest);
      if (a.install.length > 0) await this.install(name, s, a.install);
      for (const cmd of a.exec) {
        this.say(`exec in ${name}: ${clip(cmd, 120)}`);
        const code = await s.run(['/bin/sh', '-c', cmd]);
        if (code !== 0) throw new ExitError(`--exec "${clip(cmd, 80)}" exited with ${code} in image ${name} (changes so far are kept; --delete drops them)`);
      }
      if (a.chroot) {
        const shell = (await exists(join(root, 'bin/bash'))) ? '/bin/bash' : '/bin/sh';
        this.say(`entering ${name}; exit the shell to finish`);
        await s.run([shell, '-i'], { stdin: 'inherit', env: { PS1: `[cw-modimg ${name}] \\w# `, TERM: process.env.TERM ?? 'xterm' } });
      }
    });
    if (a.chroot && !a.noDiscard && this.opts.interactive && !(await this.opts.ask(`Keep the changes to ${name}?`, true))) {
      if (entry.file) {
        await rm(root, { recursive: true, force: true });
        const { root: _r, modified: _m, ...rest } = entry;
        await this.workspace.put(name, { ...rest, updated: entry.updated });
      } else {
        await this.workspace.remove(name);
      }
      this.say(`discarded the changes to ${name}`);
      return null;
    }
    return changed;
  }

  /** Copies a host path into the image; the destination is resolved inside the chroot, not on the host. */
  private async copyIn(s: ChrootSession, src: string, dest: string): Promise<void> {
    const from = src.startsWith('/') ? src : join(this.ctx.cwd, src);
    const st = await lstat(from).catch(() => undefined);
    if (!st) throw new ExitError(`--copyin: no such file or directory: ${src}`);
    const stageName = `.cw-copyin-${randomBytes(4).toString('hex')}`;
    const stage = join(s.root, stageName);
    await mkdir(stage, { mode: 0o700 });
    try {
      const cp = await execa('cp', ['-a', '--', from, join(stage, basename(from))], { reject: false, all: true, stdin: 'ignore' });
      if (cp.exitCode !== 0) throw new ExitError(`--copyin ${src}: ${String(cp.all).trim()}`);
      const code = await s.run(['cp', '-a', '--', `/${stageName}/${basename(from)}`, dest]);
      if (code !== 0) throw new ExitError(`--copyin: copying to ${dest} inside the image failed`);
      this.say(`copied ${src} to ${dest}`);
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  }

  private async install(name: string, s: ChrootSession, pkgs: readonly string[]): Promise<void> {
    for (const p of pkgs) if (!/^[A-Za-z0-9@+._:=~\/*-]+$/.test(p) || p.startsWith('-')) throw new ExitError(`--install: "${clip(p)}" is not a package name`);
    const pm = await packageManagerOf(s.root);
    if (!pm) throw new ExitError(`image ${name} has neither apt-get nor dnf/yum; install packages with --exec or --chroot`);
    await this.r.step(`Installing ${pkgs.join(' ')} into ${name} (${pm})`, async (st) => {
      const run = async (argv: string[], env: Record<string, string> = {}) => {
        const last: string[] = [];
        const code = await s.run(argv, {
          stdout: 'pipe',
          env,
          onLine: (l) => {
            last.push(l);
            if (last.length > 5) last.shift();
            st.line(l);
          },
        });
        if (code !== 0) throw new ExitError(`${argv.slice(0, 2).join(' ')} failed in image ${name} (exit ${code}): ${last.slice(-3).join(' | ')}`);
      };
      if (pm === 'apt') {
        // Services must not start in a chroot: policy-rc.d says "not now" to every invoke-rc.d.
        const policy = join(s.root, 'usr/sbin/policy-rc.d');
        const hadPolicy = await exists(policy);
        if (!hadPolicy) await writeFile(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
        try {
          const env = { DEBIAN_FRONTEND: 'noninteractive' };
          await run(['apt-get', 'update'], env);
          await run(['apt-get', 'install', '-y', '--no-install-recommends', ...pkgs], env);
          await run(['apt-get', 'clean'], env);
        } finally {
          if (!hadPolicy) await rm(policy, { force: true });
        }
        await cleanAptCaches(s.root);
      } else {
        await run([pm, '-y', '--setopt=install_weak_deps=False', 'install', ...pkgs]);
        await run([pm, 'clean', 'all']).catch(() => {});
      }
    });
  }

  private async query(name: string, entry: ManifestEntry, pkgs: readonly string[]): Promise<void> {
    const root = this.workspace.abs(entry.root as string);
    const dpkg = await exists(join(root, 'var/lib/dpkg/status'));
    const argv = dpkg
      ? ['dpkg-query', '-W', '-f', '${db:Status-Abbrev}\t${binary:Package}\t${Version}\n', ...pkgs]
      : ['rpm', '-q', '--qf', 'ii \t%{NAME}\t%{VERSION}-%{RELEASE}\n', ...(pkgs.length === 0 ? ['-a'] : pkgs)];
    if (!dpkg && !(await exists(join(root, 'usr/bin/rpm')))) throw new ExitError(`image ${name} has no package database (neither dpkg nor rpm)`);
    const r = await execa('chroot', [root, ...argv], { reject: false, stdin: 'ignore', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' }, extendEnv: false });
    const found = new Map<string, string>();
    for (const line of String(r.stdout).split('\n')) {
      const [status, pkg, version] = line.split('\t');
      if (!status?.startsWith('ii') || !pkg) continue;
      found.set(pkg.replace(/:(amd64|all|i386|arm64)$/, ''), version ?? '');
    }
    const lines = [...found].sort(([x], [y]) => x.localeCompare(y)).map(([p, v]) => `${p} ${v}`);
    if (lines.length > 0) this.ctx.out(`${lines.join('\n')}\n`);
    const missing = pkgs.filter((p) => !found.has(p) && !found.has(p.replace(/:.*$/, '')));
    if (missing.length > 0) throw new ExitError(`not installed in image ${name}: ${missing.join(', ')}`);
    if (pkgs.length === 0 && lines.length === 0) throw new ExitError(`cannot list the packages of image ${name}: ${String(r.stderr).trim().split('\n').at(-1) ?? ''}`);
  }

  // ---------------------------------------------------------------------------------------------
  // Packing and uploading

  private async packIfWanted(name: string, entry: ManifestEntry): Promise<ManifestEntry> {
    const a = this.args;
    const unpacked = Boolean(entry.modified) || !entry.file;
    if (!unpacked) return entry;
    let pack = a.upload || a.overwrite;
    if (!pack && a.chroot && this.opts.interactive) pack = await this.opts.ask(`Replace the local image file of ${name} with the changes?`, true);
    if (!pack) {
      this.say(`the changes to ${name} are kept unpacked in ${this.workspace.abs(entry.root ?? '')}; --overwrite packs them, --upload also sends them to the head node`);
      return entry;
    }
    const root = this.workspace.abs(entry.root as string);
    const fileRel = this.workspace.fileName(name, entry.uid);
    const file = this.workspace.abs(fileRel);
    const compression: Compression = a.compression ?? 'zstd';
    await this.r.step(`Packing ${name} (squashfs, ${compression})`, (s) =>
      createCwsquash(root, file, { compression, exclude: PACK_EXCLUDES, onProgress: (p) => s.percent(p.percent) }),
    );
    const checksum = await sha256File(file);
    if (entry.file && entry.file !== fileRel) await rm(this.workspace.abs(entry.file), { force: true });
    const size = (await stat(file)).size;
    this.say(`local image ${name}: ${humanBytes(size)}, ${checksum}`);
    const { modified: _m, ...rest } = entry;
    return this.workspace.put(name, { ...rest, file: fileRel, checksum });
  }

  private async upload(name: string, entry: ManifestEntry): Promise<void> {
    if (!entry.file || !entry.checksum) throw new ExitError(`local image ${name} is not packed; add --overwrite or --upload after changing it`);
    const api = this.ctx.api();
    const remote = await this.remoteImage(name);
    checkUploadTarget(name, entry, remote);
    if (remote && remote.checksum === entry.checksum) {
      if (entry.uid !== remote.uid) await this.workspace.put(name, { ...entry, uid: remote.uid });
      this.say(`image ${name} on the head node is already up to date`);
      return;
    }
    if (remote?.checksum && !this.args.overwrite) {
      const yes = this.opts.interactive && (await this.opts.ask(`Replace the content of image ${name} on the head node?`, false));
      if (!yes) throw new ExitError(`image ${name} on the head node already has content; add --overwrite to replace it`);
    }
    const file = this.workspace.abs(entry.file);
    const size = (await stat(file)).size;
    if (size > UPLOAD_LIMIT) throw new ExitError(`image ${name} is ${humanBytes(size)}, more than the head node's ${humanBytes(UPLOAD_LIMIT)} upload limit`);
    let target = remote;
    let created = false;
    if (!target) {
      target = await api.post<RemoteImage>('/images', { name });
      created = true;
    }
    const id = encodeURIComponent(target.uid);
    let answer: RemoteImage;
    const started = Date.now();
    try {
      answer = await this.r.step(`Uploading ${name} (${humanBytes(size)})`, (s) =>
        api.upload<RemoteImage>(
          `/image/${id}/content`,
          {
            size,
            open: () => {
              let done = 0;
              const meter = new Transform({
                transform(chunk: Buffer, _e, cb) {
                  done += chunk.length;
                  s.percent((done / size) * 100, `${humanBytes(done)} of ${humanBytes(size)}`);
                  cb(null, chunk);
                },
              });
              return createReadStream(file).pipe(meter);
            },
          },
          undefined,
          { 'x-checksum': entry.checksum as string },
        ),
      );
    } catch (err) {
      if (created) await api.delete(`/image/${id}`).catch(() => {});
      throw err;
    }
    if (answer?.checksum !== entry.checksum) throw new ExitError(`the head node stored checksum ${String(answer?.checksum)} for ${name}, expected ${entry.checksum}`);
    let fileRel = entry.file;
    const wanted = this.workspace.fileName(name, target.uid);
    if (fileRel !== wanted) {
      await rename(file, this.workspace.abs(wanted));
      fileRel = wanted;
    }
    await this.workspace.put(name, { ...entry, uid: target.uid, file: fileRel });
    const secs = (Date.now() - started) / 1000;
    this.say(`uploaded ${name} (uid ${target.uid}, ${humanBytes(size)} in ${formatSeconds(secs * 1000)}, ${humanBytes(size / Math.max(secs, 0.001))}/s)`);
  }
}

/** Which package manager the image itself has. */
async function packageManagerOf(root: string): Promise<PackageManager | null> {
  if (await exists(join(root, 'usr/bin/apt-get'))) return 'apt';
  if (await exists(join(root, 'usr/bin/dnf'))) return 'dnf';
  if (await exists(join(root, 'usr/bin/yum'))) return 'yum';
  return null;
}

/** nginx serves images at `/images/<uid>.img` beside the API: `http://head/api/v1` -> `http://head/images/u.img`. */
export function imageUrl(baseUrl: string, uid: string): string {
  const u = new URL(baseUrl);
  const prefix = u.pathname.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
  return `${u.origin}${prefix}/images/${encodeURIComponent(uid)}.img`;
}

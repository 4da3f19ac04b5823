// RPM → .tar.gz for nodes without rpm (the tar installer). Streamed end to end: the payload is read from
// the file, decompressed, parsed as cpio and written as tar entries into gzip, one chunk at a time, so a
// package of any size converts in bounded memory.
//
// Layout of the archive (it unpacks into /opt/cw/NAME on the node):
//   ./…                     files the RPM installs below /opt/cw/NAME, relative to it
//   ./pkg/<absolute path>   every other file under its installed path: pkg/usr/…, pkg/etc/…, pkg/lib/…
//   ./pkg/scripts/PHASE     %pre, %post, %preun, %postun (as rpm runs them: "#!INTERPRETER" then the body)
//   ./pkg/triggers/KIND-N   trigger scripts, extracted but NOT run by the tar installer; their first
//                           lines say what they wait for
//   ./pkg/manifest.json     everything above as data (format "cw-rpm2tar/1", see RpmTarManifest)
// An RPM with a file whose top directory is /scripts, /triggers or /manifest.json, or with a file
// /opt/cw/NAME/pkg, is refused: it would collide with those names.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
// xz: @napi-rs/lzma's streaming decoder (MIT, prebuilt, maintained). Tried beside it on an 80 MB
// stream: lzma-native took 1.8x as long, node-liblzma (LGPL) ended a truncated stream without an error.
import { createDecompressStream as createXzDecompress } from '@napi-rs/lzma/xz';
import { ByteReader, nextCpioEntry, skipDataPadding, type CpioEntry } from './cpio.js';
import { parallelGzip } from './parallel-gzip.js';
import { FileFlag, readRpmHeaders, RpmFormatError, type RpmFile, type RpmPackage, type ScriptPhase } from './header.js';
import { tarEnd, tarHeader, tarPadding, type TarEntry } from './tar-entries.js';

/** Where the tar installer unpacks a package: `/opt/cw/NAME`. */
export const TAR_INSTALL_ROOT = '/opt/cw';

/** The seed's rule, as the error the download endpoint returns for a DEB asked for as a TAR. */
export class DebToTarRefused extends Error {
  readonly statusCode = 422;
  constructor(what: string) {
    super(`${what}: DEB packages may be provided by the head node, but they cannot be converted to TAR files; only RPMs are converted`);
    this.name = 'DebToTarRefused';
  }
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

const MANIFEST_FORMAT = 'cw-rpm2tar/1';
const RESERVED_TOP = new Set(['scripts', 'triggers', 'manifest.json']);

/** One file as ./pkg/manifest.json lists it. */
export interface ManifestFile {
  /** Installed path, e.g. `/usr/bin/cw-status-updater`. */
  path: string;
  /** Its entry in the archive, e.g. `pkg/usr/bin/cw-status-updater`; absent for %ghost files. */
  entry?: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** Octal permission bits with setuid/setgid/sticky, e.g. `4755`. */
  mode: string;
  user: string;
  group: string;
  size: number;
  mtime: number;
  /** Symlink target. */
  target?: string;
  /** Files with the same number are hard links of one file (in the archive: one file, the others tar links to it). */
  hardlinkGroup?: number;
  config?: true;
  doc?: true;
  /** Listed by the RPM but not in its payload (%ghost). */
  ghost?: true;
}

export interface ManifestScript {
  phase: ScriptPhase;
  interpreter: string[];
  file: string;
}

export interface ManifestTrigger {
  kind: string;
  /** `bash >= 4.0`, `coreutils`. */
  conditions: string[];
  interpreter: string[];
  file: string;
  /** Always false: the tar installer reports triggers and never runs them. */
  run: false;
}

/** ./pkg/manifest.json. */
export interface RpmTarManifest {
  format: typeof MANIFEST_FORMAT;
  name: string;
  version: string;
  release: string;
  epoch?: number;
  arch: string;
  os: string;
  /** SHA-256 of the RPM it was converted from. */
  rpmSha256: string;
  /** Where the archive is meant to be unpacked: `/opt/cw/NAME`. */
  installRoot: string;
  scripts: ManifestScript[];
  triggers: ManifestTrigger[];
  files: ManifestFile[];
}

export interface ConvertResult {
  manifest: RpmTarManifest;
  /** Entries written, payload bytes read (compressed) and written (uncompressed cpio). */
  entries: number;
  payloadBytes: number;
  cpioBytes: number;
}

/**
 * Converts the RPM at `rpmPath` into a gzip-compressed tar written to `destFile` (created, must not
 * exist). `rpmSha256` is the SHA-256 the caller found for the file; it goes into the manifest and the
 * whole file is hashed again while converting, so a file changed in between is refused. Throws
 * RpmFormatError for a malformed, corrupt or truncated RPM; the caller removes `destFile` then.
 */
export async function convertRpmToTarGz(rpmPath: string, destFile: string, rpmSha256: string): Promise<ConvertResult> {
  const fh = await open(rpmPath, 'r');
  try {
    const { pkg, prefix } = await readRpmHeaders(fh);
    const fileHash = createHash('sha256');
    for (const part of prefix) fileHash.update(part);
    const layout = new Layout(pkg);
    const manifest = manifestOf(pkg, layout, rpmSha256);
    const payloadHash = createHash('sha256');
    let payloadBytes = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        payloadHash.update(chunk);
        fileHash.update(chunk);
        payloadBytes += chunk.length;
        done(null, chunk);
      },
    });
    const decompressor = decompressorFor(pkg);
    let decompressError: Error | undefined;
    decompressor.once('error', (err: Error) => {
      decompressError ??= err;
    });
    const stats = { entries: 0, cpioBytes: 0 };
    try {
      await pipeline(
        fh.createReadStream({ start: pkg.payloadOffset, autoClose: false, highWaterMark: 256 * 1024 }),
        tap,
        decompressor,
        (source: AsyncIterable<Buffer>) => tarChunks(source, pkg, layout, manifest, stats),
        (tar: AsyncIterable<Buffer>) => parallelGzip(tar),
        createWriteStream(destFile, { flags: 'wx', mode: 0o644 }),
      );
    } catch (err) {
      if (err instanceof RpmFormatError) throw err;
      if (decompressError) {
        const why = decompressError.message.split('\n')[0];
        throw new RpmFormatError(
          'payload',
          pkg.payloadOffset + payloadBytes,
          `${pkg.payloadCompressor} data is corrupt or truncated (${why}; ${payloadBytes} compressed bytes read)`,
        );
      }
      throw err;
    }
    if (pkg.payloadSha256 !== undefined) {
      const actual = payloadHash.digest('hex');
      if (actual !== pkg.payloadSha256) {
        throw new RpmFormatError('payload', pkg.payloadOffset, `SHA-256 ${actual} differs from the header's ${pkg.payloadSha256}: the payload is corrupt`);
      }
    }
    const fileSha = fileHash.digest('hex');
    if (fileSha !== rpmSha256) throw new Error(`${rpmPath} changed while it was being converted (SHA-256 now ${fileSha})`);
    return { manifest, entries: stats.entries, payloadBytes, cpioBytes: stats.cpioBytes };
  } finally {
    await fh.close();
  }
}

function decompressorFor(pkg: RpmPackage): Duplex {
  if (pkg.payloadFormat !== 'cpio') throw new RpmFormatError('header', 0, `unsupported payload format ${JSON.stringify(pkg.payloadFormat)} (only cpio)`);
  switch (pkg.payloadCompressor) {
    case 'gzip':
      return createGunzip();
    case 'zstd':
      return createZstdDecompress();
    case 'xz':
      return createXzDecompress();
    case 'identity':
      return new Transform({ transform: (chunk, _enc, done) => done(null, chunk) });
    default:
      throw new RpmFormatError('header', 0, `unsupported payload compressor ${JSON.stringify(pkg.payloadCompressor)} (gzip, xz, zstd are)`);
  }
}

/** Where each installed path goes in the archive, and the header's file list by path. */
class Layout {
  readonly root: string;
  readonly byPath = new Map<string, RpmFile>();
  /** A number for each hard-link group with more than one member, by member path. */
  readonly hardlinkGroup = new Map<string, number>();
  readonly newestMtime: number;

  constructor(pkg: RpmPackage) {
    this.root = `${TAR_INSTALL_ROOT}/${pkg.name}`;
    const groups = new Map<string, RpmFile[]>();
    let newest = 0;
    for (const file of pkg.files) {
      this.byPath.set(file.path, file);
      newest = Math.max(newest, file.mtime);
      if (!file.path.startsWith('/')) throw new RpmFormatError('header', 0, `file path ${JSON.stringify(file.path)} is not absolute`);
      if (file.path.split('/').includes('..')) throw new RpmFormatError('header', 0, `file path ${JSON.stringify(file.path)} contains ..`);
      const top = file.path.split('/')[1] ?? '';
      if (RESERVED_TOP.has(top)) throw new RpmFormatError('header', 0, `file ${file.path} collides with the archive's pkg/${top}`);
      if (file.path === `${this.root}/pkg` || file.path.startsWith(`${this.root}/pkg/`)) {
        throw new RpmFormatError('header', 0, `file ${file.path} collides with the archive's pkg/ (${this.root} is the archive's top)`);
      }
      if ((file.mode & S_IFMT) === S_IFREG && !(file.flags & FileFlag.GHOST)) {
        const key = `${file.device}:${file.inode}`;
        groups.set(key, [...(groups.get(key) ?? []), file]);
      }
    }
    this.newestMtime = newest;
    let n = 0;
    for (const members of groups.values()) {
      if (members.length < 2) continue;
      n++;
      for (const m of members) this.hardlinkGroup.set(m.path, n);
    }
  }

  /** `pkg/usr/bin/x` for `/usr/bin/x`; `bin/x` for `/opt/cw/NAME/bin/x`; `.` for `/opt/cw/NAME`. */
  entryOf(path: string): string {
    if (path === this.root) return '.';
    if (path.startsWith(`${this.root}/`)) return path.slice(this.root.length + 1);
    return `pkg${path}`;
  }
}

function fileType(mode: number): ManifestFile['type'] {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return 'file';
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'symlink';
    default:
      return 'other';
  }
}

function manifestOf(pkg: RpmPackage, layout: Layout, rpmSha256: string): RpmTarManifest {
  const scripts: ManifestScript[] = (['pre', 'post', 'preun', 'postun'] as const)
    .filter((phase) => pkg.scripts[phase] !== undefined)
    .map((phase) => ({ phase, interpreter: pkg.scripts[phase]!.interpreter, file: `pkg/scripts/${phase}` }));
  const triggers: ManifestTrigger[] = pkg.triggers.map((t, i) => ({
    kind: t.kind,
    conditions: t.conditions.map((c) => [c.name, c.relation, c.version].filter(Boolean).join(' ')),
    interpreter: t.interpreter,
    file: `pkg/triggers/${t.kind}-${i + 1}`,
    run: false,
  }));
  const files: ManifestFile[] = pkg.files.map((f) => {
    const ghost = (f.flags & FileFlag.GHOST) !== 0;
    const type = fileType(f.mode);
    const group = layout.hardlinkGroup.get(f.path);
    return {
      path: f.path,
      ...(ghost ? {} : { entry: layout.entryOf(f.path) }),
      type,
      mode: (f.mode & 0o7777).toString(8).padStart(4, '0'),
      user: f.user,
      group: f.group,
      size: f.size,
      mtime: f.mtime,
      ...(type === 'symlink' ? { target: f.linkTo } : {}),
      ...(group !== undefined ? { hardlinkGroup: group } : {}),
      ...(f.flags & FileFlag.CONFIG ? { config: true as const } : {}),
      ...(f.flags & FileFlag.DOC ? { doc: true as const } : {}),
      ...(ghost ? { ghost: true as const } : {}),
    };
  });
  return {
    format: MANIFEST_FORMAT,
    name: pkg.name,
    version: pkg.version,
    release: pkg.release,
    ...(pkg.epoch !== undefined ? { epoch: pkg.epoch } : {}),
    arch: pkg.arch,
    os: pkg.os,
    rpmSha256,
    installRoot: layout.root,
    scripts,
    triggers,
    files,
  };
}

/** A script file as rpm would run it: the interpreter line, then the body. */
function scriptText(interpreter: string[], body: string, comments: string[] = []): string {
  const lines = [`#!${interpreter.join(' ')}`, ...comments.map((c) => `# ${c}`), body];
  return `${lines.join('\n')}${body.endsWith('\n') ? '' : '\n'}`;
}

/** The tar stream: pkg/ metadata first (known from the header), then the payload's files in cpio order. */
async function* tarChunks(
  source: AsyncIterable<Buffer>,
  pkg: RpmPackage,
  layout: Layout,
  manifest: RpmTarManifest,
  stats: { entries: number; cpioBytes: number },
): AsyncGenerator<Buffer> {
  const mtime = layout.newestMtime;
  const meta = (path: string, type: 'File' | 'Directory', size: number, mode: number): TarEntry => ({
    path,
    type,
    mode,
    uid: 0,
    gid: 0,
    uname: 'root',
    gname: 'root',
    mtime,
    size,
  });
  function* small(path: string, text: string, mode: number): Generator<Buffer> {
    const data = Buffer.from(text, 'utf8');
    stats.entries++;
    yield tarHeader(meta(path, 'File', data.length, mode));
    yield data;
    yield tarPadding(data.length);
  }
  for (const dir of ['pkg', 'pkg/scripts', 'pkg/triggers']) {
    stats.entries++;
    yield tarHeader(meta(dir, 'Directory', 0, 0o755));
  }
  yield* small('pkg/manifest.json', `${JSON.stringify(manifest, null, 2)}\n`, 0o644);
  for (const script of manifest.scripts) {
    yield* small(script.file, scriptText(script.interpreter, pkg.scripts[script.phase]!.body), 0o755);
  }
  for (const [i, trigger] of manifest.triggers.entries()) {
    const comments = [
      `%${trigger.kind} -- ${trigger.conditions.join(', ')}`,
      'Extracted from the RPM; the tar installer does not run triggers. Check whether this system needs it.',
    ];
    yield* small(trigger.file, scriptText(trigger.interpreter, pkg.triggers[i]!.body, comments), 0o644);
  }

  const reader = new ByteReader(source);
  const seen = new Set<string>();
  // Hard links: rpm writes a group's data with its last member, the others empty. Members before the
  // data are held back and written as tar hard links to the member that carries it.
  const groups = new Map<string, { leader?: string; waiting: TarEntry[] }>();
  for (;;) {
    const entry = await nextCpioEntry(reader);
    if (!entry) break;
    const path = entry.name.replace(/^\.?\//, '/');
    const file = layout.byPath.get(path);
    if (!file) throw new RpmFormatError('cpio archive', entry.offset, `entry ${JSON.stringify(entry.name)} is not in the header's file list`);
    if (seen.has(path)) throw new RpmFormatError('cpio archive', entry.offset, `entry ${JSON.stringify(entry.name)} appears twice`);
    seen.add(path);
    const type = fileType(entry.mode);
    const tarEntry: TarEntry = {
      path: layout.entryOf(path),
      type: type === 'dir' ? 'Directory' : type === 'symlink' ? 'SymbolicLink' : 'File',
      mode: entry.mode & 0o7777,
      uid: entry.uid,
      gid: entry.gid,
      uname: file.user,
      gname: file.group,
      mtime: entry.mtime,
      size: type === 'file' ? entry.size : 0,
    };
    if (type === 'other') throw new RpmFormatError('cpio archive', entry.offset, `${entry.name}: device files and FIFOs are not supported`);
    if (type === 'symlink') {
      const target = await readAll(reader, entry);
      yield tarHeader({ ...tarEntry, linkpath: target.toString('utf8') });
      stats.entries++;
      continue;
    }
    if (type === 'dir') {
      await skipDataPadding(reader, entry);
      yield tarHeader(tarEntry);
      stats.entries++;
      continue;
    }
    if (entry.nlink > 1) {
      const key = `${entry.devMajor}:${entry.devMinor}:${entry.ino}`;
      const group = groups.get(key) ?? { waiting: [] };
      groups.set(key, group);
      if (group.leader !== undefined || entry.size === 0) {
        await skipDataPadding(reader, entry);
        if (group.leader !== undefined) {
          yield tarHeader({ ...tarEntry, type: 'Link', size: 0, linkpath: group.leader });
          stats.entries++;
        } else {
          group.waiting.push(tarEntry);
        }
        continue;
      }
      group.leader = tarEntry.path;
      yield* fileData(reader, entry, tarEntry);
      stats.entries++;
      for (const waiting of group.waiting) {
        yield tarHeader({ ...waiting, type: 'Link', size: 0, linkpath: tarEntry.path });
        stats.entries++;
      }
      group.waiting = [];
      continue;
    }
    yield* fileData(reader, entry, tarEntry);
    stats.entries++;
  }
  // Groups whose members are all empty: the first becomes an empty file, the rest links to it.
  for (const group of groups.values()) {
    const [first, ...rest] = group.waiting;
    if (!first) continue;
    yield tarHeader(first);
    stats.entries++;
    for (const other of rest) {
      yield tarHeader({ ...other, type: 'Link', size: 0, linkpath: first.path });
      stats.entries++;
    }
  }
  const trailerEnd = reader.position;
  if (!(await reader.restIsZero())) throw new RpmFormatError('cpio archive', trailerEnd, 'data after the TRAILER!!! entry');
  stats.cpioBytes = reader.position;
  const missing = pkg.files.filter((f) => !(f.flags & FileFlag.GHOST) && !seen.has(f.path));
  if (missing.length > 0) {
    throw new RpmFormatError('cpio archive', trailerEnd, `payload lacks ${missing.length} file(s) of the header's list, e.g. ${missing[0]!.path}`);
  }
  yield tarEnd();
}

async function* fileData(reader: ByteReader, entry: CpioEntry, tarEntry: TarEntry): AsyncGenerator<Buffer> {
  yield tarHeader(tarEntry);
  const ended = () => new RpmFormatError('cpio archive', reader.position, `archive ends inside the data of ${entry.name} (truncated payload)`);
  yield* reader.chunks(entry.size, ended);
  await skipDataPadding(reader, entry);
  yield tarPadding(entry.size);
}

async function readAll(reader: ByteReader, entry: CpioEntry): Promise<Buffer> {
  if (entry.size > 64 * 1024) throw new RpmFormatError('cpio archive', entry.offset, `symlink ${entry.name} has an implausible target length ${entry.size}`);
  const data = await reader.read(entry.size);
  if (!data) throw new RpmFormatError('cpio archive', reader.position, `archive ends inside the target of ${entry.name} (truncated payload)`);
  const copy = Buffer.from(data);
  await skipDataPadding(reader, entry);
  return copy;
}

// Roots from container images: a `docker save` / `podman save` archive (docker-archive format, also the
// OCI-layout variant newer Docker writes) is unpacked layer by layer, as an overlay would stack them.
// A layer's whiteouts remove what lower layers made: `.wh.NAME` deletes NAME, `.wh..wh..opq` in a
// directory hides everything lower layers put there. The whiteouts themselves are never written.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, realpath, rm, symlink, unlink } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import { execa } from 'execa';
import * as tar from 'tar';
import { BuildError, type LineSink } from './common.js';

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

/** One image in a docker-archive's manifest.json. */
export interface ArchiveManifestEntry {
  Config?: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** What a layer removes from the layers below it. */
export interface LayerWhiteouts {
  /** Paths (relative, `/`-separated) to delete. */
  deleted: string[];
  /** Directories whose lower contents are hidden. */
  opaque: string[];
}

/** Where an import comes from: `docker-archive:FILE` or an image name in the local engine. */
export type ImportSource = { kind: 'archive'; file: string } | { kind: 'engine'; image: string };

/** `docker-archive:/tmp/x.tar` -> archive; anything else -> an engine image name. */
export function parseImportSource(spec: string): ImportSource {
  if (spec.startsWith('docker-archive:')) {
    const file = spec.slice('docker-archive:'.length);
    if (file === '') throw new BuildError('docker-archive: needs a file name, e.g. docker-archive:/tmp/image.tar');
    return { kind: 'archive', file };
  }
  if (spec.startsWith('oci-archive:') || spec.startsWith('oci:')) {
    throw new BuildError(`"${spec}": only docker-archive:FILE and local engine image names are supported; use docker save or podman save`);
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$/.test(spec)) throw new BuildError(`"${spec.slice(0, 80)}" is not an image name`);
  return { kind: 'engine', image: spec };
}

/** Normalized relative path of a tar entry (`./usr/bin/` -> `usr/bin`); null for the root itself. */
export function entryPath(raw: string): string | null {
  const p = posix.normalize(raw.replace(/^\/+/, '')).replace(/\/+$/, '');
  if (p === '.' || p === '') return null;
  if (p === '..' || p.startsWith('../')) throw new BuildError(`layer entry "${raw}" points outside the image`);
  return p;
}

/** Whiteouts of one layer tarball. */
export async function readWhiteouts(layerFile: string): Promise<LayerWhiteouts> {
  const deleted: string[] = [];
  const opaque: string[] = [];
  await tar.t({
    file: layerFile,
    onReadEntry: (entry) => {
      const p = entryPath(entry.path);
      if (p === null) return;
      const name = basename(p);
      if (!name.startsWith(WHITEOUT_PREFIX)) return;
      const dir = dirname(p) === '.' ? '' : dirname(p);
      if (name === OPAQUE_MARKER) opaque.push(dir);
      else deleted.push(dir === '' ? name.slice(WHITEOUT_PREFIX.length) : `${dir}/${name.slice(WHITEOUT_PREFIX.length)}`);
    },
  });
  return { deleted, opaque };
}

/**
 * The path of `rel` inside `root`, or null when a directory on the way is a symlink or missing (then
 * there is nothing of the lower layers to delete there, and nothing outside the root is touched).
 */
async function insideRoot(root: string, rel: string): Promise<string | null> {
  const realRoot = await realpath(root);
  const parentRel = dirname(rel) === '.' ? '' : dirname(rel);
  let realParent: string;
  try {
    realParent = await realpath(join(root, parentRel));
  } catch {
    return null;
  }
  // A symlink on the way resolves elsewhere (maybe outside the root): leave it alone.
  if (realParent !== join(realRoot, parentRel)) return null;
  return join(realParent, basename(rel));
}

/** Applies one layer onto `root`: its whiteouts first, then its files (never the whiteout markers). */
export async function applyLayer(root: string, layerFile: string, warn?: LineSink): Promise<void> {
  const wh = await readWhiteouts(layerFile);
  for (const dir of wh.opaque) {
    const full = dir === '' ? root : await insideRoot(root, dir);
    if (!full) continue;
    const st = await lstat(full).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    for (const child of await readdir(full)) await rm(join(full, child), { recursive: true, force: true });
  }
  for (const rel of wh.deleted) {
    const full = await insideRoot(root, rel);
    if (full) await rm(full, { recursive: true, force: true });
  }
  // tar strips the leading "/" of symlink targets (a safety rule for archives in general); in a root
  // file system `/lib64/ld-linux-x86-64.so.2 -> /lib/...` must stay absolute, so those are re-made after.
  const absoluteLinks: Array<[string, string]> = [];
  // Modes are the archive's exactly (sticky /tmp, setuid binaries): no umask while unpacking.
  const savedUmask = process.umask(0);
  try {
    await tar.x({
      file: layerFile,
      cwd: root,
      preserveOwner: process.getuid?.() === 0,
      chmod: true,
      processUmask: 0,
      filter: (path, entry) => {
        let p: string | null;
        try {
          p = entryPath(path);
        } catch (err) {
          warn?.(`skipped: ${(err as Error).message}`);
          return false;
        }
        if (p === null) return true;
        if (basename(p).startsWith(WHITEOUT_PREFIX)) return false;
        const e = entry as { type?: string; linkpath?: string };
        if (e.type === 'SymbolicLink' && e.linkpath?.startsWith('/')) absoluteLinks.push([p, e.linkpath]);
        return true;
      },
      onwarn: (code, message) => warn?.(`${code}: ${message}`),
    });
  } finally {
    process.umask(savedUmask);
  }
  for (const [rel, target] of absoluteLinks) {
    const full = await insideRoot(root, rel);
    if (!full) continue;
    const st = await lstat(full).catch(() => undefined);
    if (!st?.isSymbolicLink()) continue;
    await unlink(full);
    await symlink(target, full);
  }
}

/** Reads manifest.json of an unpacked docker-archive; picks the image tagged `want`, else the only one. */
export async function readArchiveManifest(dir: string, want?: string): Promise<ArchiveManifestEntry> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  } catch {
    throw new BuildError('not a docker-archive: manifest.json is missing or not JSON (make it with docker save or podman save)');
  }
  if (!Array.isArray(doc) || doc.length === 0) throw new BuildError('docker-archive manifest.json lists no image');
  const entries = doc as ArchiveManifestEntry[];
  for (const e of entries) {
    if (!Array.isArray(e?.Layers) || e.Layers.some((l) => typeof l !== 'string')) throw new BuildError('docker-archive manifest.json: an image has no Layers list');
  }
  if (entries.length === 1) return entries[0] as ArchiveManifestEntry;
  const found = want ? entries.find((e) => (e.RepoTags ?? []).some((t) => t === want || t.endsWith(`/${want}`))) : undefined;
  if (!found) throw new BuildError(`the archive holds ${entries.length} images; name one of: ${entries.flatMap((e) => e.RepoTags ?? []).join(', ')}`);
  return found;
}

/**
 * Unpacks the image of a docker-archive into `root` (created, must be empty). `scratch` is a directory
 * for the unpacked archive (on the same file system as the workspace, removed afterwards).
 */
export async function importDockerArchive(file: string, root: string, scratch: string, onLine?: LineSink, want?: string): Promise<{ layers: number }> {
  const work = join(scratch, `import-${randomBytes(4).toString('hex')}`);
  await mkdir(work, { recursive: true, mode: 0o700 });
  try {
    try {
      await tar.x({ file, cwd: work });
    } catch (err) {
      throw new BuildError(`cannot read ${file}: ${(err as Error).message}`);
    }
    const manifest = await readArchiveManifest(work, want);
    await mkdir(root, { recursive: true, mode: 0o755 });
    let n = 0;
    for (const layer of manifest.Layers) {
      const rel = entryPath(layer);
      if (rel === null) throw new BuildError(`docker-archive manifest.json names an invalid layer "${layer}"`);
      n++;
      onLine?.(`layer ${n}/${manifest.Layers.length}: ${rel}`);
      await applyLayer(root, join(work, rel), onLine);
    }
    return { layers: n };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Saves an image of the local engine (docker, else podman) to `outFile` with `save`. */
export async function saveEngineImage(image: string, outFile: string, onLine?: LineSink): Promise<string> {
  const tried: string[] = [];
  for (const engine of ['docker', 'podman']) {
    const inspect = await execa(engine, ['image', 'inspect', image], { reject: false, stdin: 'ignore' });
    if ((inspect as { code?: string }).code === 'ENOENT') continue;
    tried.push(engine);
    if (inspect.exitCode !== 0) continue;
    onLine?.(`${engine} save ${image}`);
    const save = await execa(engine, ['save', '-o', outFile, image], { reject: false, stdin: 'ignore', all: true });
    if (save.exitCode !== 0) throw new BuildError(`${engine} save ${image} failed: ${String(save.all).trim().split('\n').at(-1)}`);
    return engine;
  }
  if (tried.length === 0) throw new BuildError(`cannot import ${image}: neither docker nor podman is installed (or use docker-archive:FILE)`);
  throw new BuildError(`no image ${image} in ${tried.join(' or ')} (pull or load it first, or use docker-archive:FILE)`);
}

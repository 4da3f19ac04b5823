// The admin's image workspace on the host: local copies of images and their unpacked roots.
//
//   WORKSPACE/manifest.json      {"images": {NAME: {uid, checksum, file, root?, updated, modified?}}}
//   WORKSPACE/<uid>.img          a local cwsquash copy (`<name>.local.img` before its first upload)
//   WORKSPACE/roots/<NAME>/      the unpacked root a command works on
//
// A local copy is trusted over the head node's: an admin can change an image in several steps without
// uploading in between. So it can go stale (the remote image deleted and re-made under the same name),
// which is why a uid mismatch is refused at upload, and why clean copies that equal the remote ones
// are dropped after an hour.
import { constants } from 'node:fs';
import { mkdir, open, readFile, rm, stat, unlink } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-write.js';
import { ExitError } from '../lib/errors.js';
import { isSafeName } from '../lib/validate.js';

/** Clean local copies older than this, identical to the head node's, are evicted. */
export const EVICT_AFTER_MS = 60 * 60 * 1000;

export interface ManifestEntry {
  /** The head node's uid for this image; null until the first upload of a locally made image. */
  uid: string | null;
  /** `sha256:<hex>` of the local cwsquash file; null while there is none. */
  checksum: string | null;
  /** The local cwsquash file, relative to the workspace; null while there is none. */
  file: string | null;
  /** The unpacked root, relative to the workspace, when one exists. */
  root?: string;
  /** ISO time the entry last changed (download, pack, upload). */
  updated: string;
  /** ISO time of the first change to `root` not yet packed into `file`; absent when they agree. */
  modified?: string;
}

export interface Manifest {
  images: Record<string, ManifestEntry>;
}

/** What the head node says about one image (a subset of the API's image object). */
export interface RemoteImage {
  uid: string;
  name: string;
  checksum: string | null;
  size?: number;
}

/** The head node's uids: 32 lowercase hex digits (the API's uid form). */
export const IMAGE_UID_RE = /^[0-9a-f]{32}$/;
/** The head node's content checksums. */
export const CHECKSUM_RE = /^sha256:[0-9a-f]{64}$/;

/** A value for an error message: quoted, control characters escaped, at most 40 characters shown. */
function shown(value: unknown): string {
  if (typeof value !== 'string') return JSON.stringify(value) ?? String(value);
  return JSON.stringify(value.length > 40 ? value.slice(0, 40) : value) + (value.length > 40 ? '...' : '');
}

/**
 * What the head node said about one image, checked before any of it names a file or is compared: the
 * uid and checksum in the API's forms, a safe name, a size that is a count of bytes. `where` names the
 * request, for the message. Example: `parseRemoteImage(await api.get('/image/slim'), 'GET /image/slim')`.
 * cw-modimg runs as root: a spoofed head node must not be able to choose where it writes.
 */
export function parseRemoteImage(value: unknown, where: string): RemoteImage {
  const refuse = (what: string): never => {
    throw new ExitError(`the head node sent an image ${what} (${where})`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) refuse('that is not an object');
  const v = value as Record<string, unknown>;
  if (typeof v.uid !== 'string' || !IMAGE_UID_RE.test(v.uid)) refuse(`with an invalid uid ${shown(v.uid)}: expected 32 hex digits`);
  if (typeof v.name !== 'string' || isSafeName(v.name) !== true) refuse(`with an invalid name ${shown(v.name)}`);
  if (v.checksum !== null && (typeof v.checksum !== 'string' || !CHECKSUM_RE.test(v.checksum))) {
    refuse(`with an invalid checksum ${shown(v.checksum)}: expected sha256:<64 hex digits> or null`);
  }
  if (v.size !== undefined && (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0)) refuse(`with an invalid size ${shown(v.size)}`);
  const image: RemoteImage = { uid: v.uid as string, name: v.name as string, checksum: v.checksum as string | null };
  if (v.size !== undefined) image.size = v.size as number;
  return image;
}

/** `parseRemoteImage` for every image of a list (`GET /images`). */
export function parseRemoteImages(value: unknown, where: string): RemoteImage[] {
  if (!Array.isArray(value)) throw new ExitError(`the head node sent an image list that is not a list (${where})`);
  return value.map((v) => parseRemoteImage(v, where));
}

/** Throws a one-line ExitError unless `name` may name an image (and so a directory here). */
export function checkImageName(name: string): void {
  const check = isSafeName(name);
  if (check !== true) throw new ExitError(`invalid image name "${name.slice(0, 64)}": ${check}`);
}

/** Parses manifest text; throws ExitError naming the file for anything malformed. */
export function parseManifest(text: string, path: string): Manifest {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ExitError(`${path}: not valid JSON (${(err as Error).message}); fix it or remove it to start an empty workspace`);
  }
  const images = (doc as { images?: unknown } | null)?.images;
  if (typeof doc !== 'object' || doc === null || typeof images !== 'object' || images === null || Array.isArray(images)) {
    throw new ExitError(`${path}: expected {"images": {...}}`);
  }
  const out: Manifest = { images: {} };
  const problems: string[] = [];
  for (const [name, raw] of Object.entries(images as Record<string, unknown>)) {
    const e = raw as Record<string, unknown> | null;
    const okName = isSafeName(name) === true;
    const str = (v: unknown) => typeof v === 'string';
    const strOrNull = (v: unknown) => v === null || typeof v === 'string';
    if (!okName || typeof e !== 'object' || e === null || !strOrNull(e.uid) || !strOrNull(e.checksum) || !strOrNull(e.file) || !str(e.updated)) {
      problems.push(name);
      continue;
    }
    const rel = (v: unknown) => typeof v === 'string' && v !== '' && !v.startsWith('/') && !v.split('/').includes('..');
    if ((e.file !== null && !rel(e.file)) || (e.root !== undefined && !rel(e.root))) {
      problems.push(name);
      continue;
    }
    const entry: ManifestEntry = { uid: e.uid as string | null, checksum: e.checksum as string | null, file: e.file as string | null, updated: e.updated as string };
    if (typeof e.root === 'string') entry.root = e.root;
    if (typeof e.modified === 'string') entry.modified = e.modified;
    out.images[name] = entry;
  }
  if (problems.length > 0) throw new ExitError(`${path}: malformed entries: ${problems.slice(0, 5).join(', ')}`);
  return out;
}

/**
 * Names of local copies to evict: older than an hour, not modified since packing, and identical (same
 * uid, same name, same checksum) to the head node's image.
 */
export function staleEntries(manifest: Manifest, remote: readonly RemoteImage[], now: number): string[] {
  const byUid = new Map(remote.map((r) => [r.uid, r]));
  const out: string[] = [];
  for (const [name, e] of Object.entries(manifest.images)) {
    if (!e.uid || !e.checksum || e.modified) continue;
    const age = now - Date.parse(e.updated);
    if (!(age > EVICT_AFTER_MS)) continue;
    const r = byUid.get(e.uid);
    if (r && r.name === name && r.checksum === e.checksum) out.push(name);
  }
  return out.sort();
}

/**
 * Refuses an upload of a local copy that belongs to another image than the head node's of that name
 * (the remote one was deleted and re-made meanwhile).
 */
export function checkUploadTarget(name: string, entry: ManifestEntry, remote: RemoteImage | undefined): void {
  if (remote && entry.uid && remote.uid !== entry.uid) {
    throw new ExitError(`local image ${name} has uid ${entry.uid} but the head node's has ${remote.uid}; run cw-modimg -i ${name} --delete`);
  }
}

/** One workspace directory. All changes to the manifest are read-modify-write under a lock. */
export class Workspace {
  readonly dir: string;
  private readonly now: () => number;
  /** How deep this process holds the lock (calls nest: a command holds it while updating the manifest). */
  private held = 0;

  constructor(dir: string, now: () => number = Date.now) {
    this.dir = dir;
    this.now = now;
  }

  get manifestPath(): string {
    return join(this.dir, 'manifest.json');
  }

  /** Creates the workspace directory (0700: images hold whatever the admin put in them). */
  async ensure(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await mkdir(join(this.dir, 'roots'), { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new ExitError(`cannot create the workspace ${this.dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)} (set modimg.workspace in ~/.cw/settings.ini)`);
    }
  }

  async load(): Promise<Manifest> {
    let text: string;
    try {
      text = await readFile(this.manifestPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { images: {} };
      throw new ExitError(`cannot read ${this.manifestPath}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    return parseManifest(text, this.manifestPath);
  }

  /** Writes the manifest atomically (0600). */
  async save(manifest: Manifest): Promise<void> {
    const sorted: Manifest = { images: Object.fromEntries(Object.entries(manifest.images).sort(([a], [b]) => a.localeCompare(b))) };
    await writeFileAtomic(this.manifestPath, `${JSON.stringify(sorted, null, 2)}\n`, { mode: 0o600 });
  }

  /** Applies `change` to the current manifest and saves it, under the workspace lock. */
  async update<T>(change: (m: Manifest) => T | Promise<T>): Promise<T> {
    return this.withLock(async () => {
      const m = await this.load();
      const result = await change(m);
      await this.save(m);
      return result;
    });
  }

  async entry(name: string): Promise<ManifestEntry | undefined> {
    return (await this.load()).images[name];
  }

  /** Sets (or replaces) one entry, stamping `updated`. */
  async put(name: string, entry: Omit<ManifestEntry, 'updated'> & { updated?: string }): Promise<ManifestEntry> {
    checkImageName(name);
    const full: ManifestEntry = { ...entry, updated: entry.updated ?? this.stamp() };
    await this.update((m) => {
      m.images[name] = full;
    });
    return full;
  }

  /** Removes a local image: its entry, its file and its unpacked root. Returns whether there was one. */
  async remove(name: string): Promise<boolean> {
    const entry = await this.update((m) => {
      const e = m.images[name];
      delete m.images[name];
      return e;
    });
    if (!entry) {
      // An unpacked root left by an interrupted command is removed too.
      await rm(this.rootPath(name), { recursive: true, force: true });
      return false;
    }
    if (entry.file) await rm(this.abs(entry.file), { force: true });
    await rm(entry.root ? this.abs(entry.root) : this.rootPath(name), { recursive: true, force: true });
    return true;
  }

  /** Where an image's root is unpacked. */
  rootPath(name: string): string {
    checkImageName(name);
    return this.inside(join('roots', name));
  }

  /** Where an image's local file lives: by uid once known. Relative to the workspace. */
  fileName(name: string, uid: string | null): string {
    checkImageName(name);
    if (uid !== null && !IMAGE_UID_RE.test(uid)) throw new ExitError(`invalid image uid ${shown(uid)}: expected 32 hex digits`);
    return uid ? `${uid}.img` : `${name}.local.img`;
  }

  /**
   * The absolute path of `rel` (relative to the workspace), refused with an ExitError when it would lead
   * outside the workspace. Every workspace path goes through here (cw-modimg runs as root).
   */
  inside(rel: string): string {
    if (rel.includes('\0')) throw new ExitError(`refusing the workspace path ${shown(rel)}: it contains NUL`);
    const path = join(this.dir, rel);
    const within = relative(resolve(this.dir), resolve(path));
    if (within === '..' || within.startsWith(`..${sep}`) || isAbsolute(within)) {
      throw new ExitError(`refusing the workspace path ${shown(rel)}: it leads outside the workspace ${this.dir}`);
    }
    return path;
  }

  /** The absolute path of `rel`, relative to the workspace (see `inside`). */
  abs(rel: string): string {
    return this.inside(rel);
  }

  stamp(): string {
    return new Date(this.now()).toISOString();
  }

  /** Evicts the given stale entries; returns their names. */
  async evict(names: readonly string[]): Promise<string[]> {
    for (const n of names) await this.remove(n);
    return [...names];
  }

  /**
   * Runs `body` holding `WORKSPACE/.lock` (a file naming the holder's pid). A lock whose process is
   * gone is taken over; a live one makes the call wait up to `waitMs`.
   */
  async withLock<T>(body: () => Promise<T>, waitMs = 30_000): Promise<T> {
    if (this.held > 0) {
      this.held++;
      try {
        return await body();
      } finally {
        this.held--;
      }
    }
    const lock = join(this.dir, '.lock');
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        const fh = await open(lock, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          await this.ensure();
          continue;
        }
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
        if (!alive(holder)) {
          await unlink(lock).catch(() => {});
          continue;
        }
        if (Date.now() > deadline) throw new ExitError(`the workspace ${this.dir} is in use by process ${holder} (another cw-modimg)`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    this.held = 1;
    try {
      return await body();
    } finally {
      this.held = 0;
      await unlink(lock).catch(() => {});
    }
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a path exists (for callers that only need yes or no). */
export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

// Boot files and images replicated among the heads of one cluster (several heads on etcd). The store
// says which blobs there are (each kernel, initramfs and image by its sha256); every head pulls what it
// lacks from another head over HTTP, verifies size and sha256 before the blob becomes visible, and
// links it under the object's file name. A boot asking this head for a blob it does not hold yet is sent
// to a head that holds it (`holder`), so a node never waits for a copy and never gets wrong bytes.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';
import type { BootConfig, Image } from '../db/collections.js';
import type { Store } from '../db/store.js';
import { errorMessage } from '../../lib/errors.js';
import { hexOfChecksum, LocalBlobs, SHA256_HEX_RE } from './local.js';

/** Where the other heads serve the blobs they hold (never redirected further): `${peer}${HERE_PATH}/<hex>`. */
export const HERE_PATH = '/blobs/here';

/** One blob the store names: its content, what it is (for the log) and the files that carry it here. */
export interface WantedBlob {
  hex: string;
  size: number;
  label: string;
  files: string[];
}

export interface BlobDirs {
  blobsDir: string;
  bootDir: string;
  imagesDir: string;
}

/** Every blob the store names, by sha256. */
export async function wantedBlobs(store: Pick<Store, 'list'>, dirs: BlobDirs): Promise<Map<string, WantedBlob>> {
  return wantedOf(await objectsOf(store), dirs);
}

interface Objects {
  images: Image[];
  boots: BootConfig[];
}

async function objectsOf(store: Pick<Store, 'list'>): Promise<Objects> {
  const [images, boots] = await Promise.all([store.list('images'), store.list('bootconfigs')]);
  return { images, boots };
}

function wantedOf({ images, boots }: Objects, dirs: BlobDirs): Map<string, WantedBlob> {
  const wanted = new Map<string, WantedBlob>();
  const want = (checksum: string | null, size: number, label: string, file: string): void => {
    const hex = hexOfChecksum(checksum);
    if (hex === null) return;
    const known = wanted.get(hex);
    if (known) known.files.push(file);
    else wanted.set(hex, { hex, size, label, files: [file] });
  };
  for (const image of images) want(image.checksum, image.size, `image ${image.name}`, join(dirs.imagesDir, `${image.uid}.img`));
  for (const boot of boots) {
    for (const which of ['kernel', 'initramfs'] as const) {
      const file = boot[which];
      if (file) want(file.checksum, file.size, `${which} of boot config ${boot.name}`, join(dirs.bootDir, boot.uid, which));
    }
  }
  return wanted;
}

export interface ReplicatorOptions {
  store: Pick<Store, 'list'>;
  dirs: BlobDirs;
  /** The other heads' HTTP base URLs (`http://10.0.0.2`); may fail (the last answer is kept). */
  peers: () => Promise<string[]>;
  log: (line: string) => void;
  /** Between two looks at the store besides `poke()` (default 10 s). */
  intervalMs?: number;
  /** A blob nothing names is removed once this old (default 10 min: an upload may be committing). */
  graceMs?: number;
  /** How long a head gets to say whether it holds a blob (default 1.5 s). */
  probeTimeoutMs?: number;
  /** Longest pause within one download before it is given up (default 30 s). */
  idleTimeoutMs?: number;
  clock?: () => number;
}

export interface ReconcileResult {
  /** Blobs copied from another head this time. */
  pulled: string[];
  /** Blobs still missing here (no head had them, or the copy failed). */
  missing: string[];
  /** Blobs removed because nothing names them any more. */
  removed: string[];
}

const PROGRESS_EVERY_MS = 10_000;
const POKE_DELAY_MS = 200;
const HOLDER_CACHE_MS = 3000;
const PART_MAX_AGE_MS = 3_600_000;

export class BlobReplicator {
  readonly local: LocalBlobs;
  readonly #o: Required<Omit<ReplicatorOptions, 'clock'>> & { clock: () => number };
  #peers: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #soon: NodeJS.Timeout | undefined;
  #lastError: string | null = null;
  #running: Promise<ReconcileResult> | null = null;
  #again = false;
  #stopped = false;
  readonly #abort = new AbortController();
  readonly #holders = new Map<string, { url: string | null; at: number }>();
  readonly #inProgress = new Set<string>();

  constructor(options: ReplicatorOptions) {
    this.#o = { intervalMs: 10_000, graceMs: 600_000, probeTimeoutMs: 1500, idleTimeoutMs: 30_000, clock: Date.now, ...options };
    this.local = new LocalBlobs(options.dirs.blobsDir);
  }

  /** Looks now, then every interval. */
  start(): void {
    const tick = (): void => {
      this.poke();
      this.#timer = setTimeout(tick, this.#o.intervalMs);
      this.#timer.unref();
    };
    tick();
  }

  /** Asks for a look soon (after a change on any head): pokes within POKE_DELAY_MS make one look. */
  poke(): void {
    if (this.#stopped || this.#soon) return;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      if (this.#running) {
        this.#again = true;
        return;
      }
      void this.reconcile().catch((err: unknown) => this.#failed(err));
    }, POKE_DELAY_MS);
    this.#soon.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#soon);
    this.#abort.abort();
    await this.#running?.catch(() => undefined);
  }

  /** Whether other heads are known (a blob missing here may then be on one of them). */
  hasPeers(): boolean {
    return this.#peers.length > 0;
  }

  /** One look: what the store names is here (pulled if need be), what nothing names goes. */
  reconcile(): Promise<ReconcileResult> {
    if (this.#running) return this.#running;
    const run = (async (): Promise<ReconcileResult> => {
      let result: ReconcileResult;
      do {
        this.#again = false;
        result = await this.#reconcileOnce();
      } while (this.#again && !this.#stopped);
      if (this.#lastError !== null) this.#o.log('blobs: the store answers again');
      this.#lastError = null;
      return result;
    })();
    this.#running = run;
    void run.finally(() => {
      if (this.#running === run) this.#running = null;
    }).catch(() => undefined);
    return run;
  }

  async #reconcileOnce(): Promise<ReconcileResult> {
    await this.#refreshPeers();
    const objects = await objectsOf(this.#o.store);
    const wanted = wantedOf(objects, this.#o.dirs);
    const result: ReconcileResult = { pulled: [], missing: [], removed: [] };
    // Small ones first: a kernel should not wait behind a large image.
    for (const want of [...wanted.values()].sort((a, b) => a.size - b.size)) {
      if (this.#stopped) break;
      let here = await this.local.adopt(want.hex, want.size, want.files);
      if (!here && this.#peers.length > 0) {
        here = await this.#pull(want);
        if (here) result.pulled.push(want.hex);
      }
      if (!here) {
        result.missing.push(want.hex);
        continue;
      }
      for (const file of want.files) await this.local.placeAt(want.hex, file).catch((err: unknown) => this.#o.log(`blobs: ${want.label}: ${errorMessage(err)}`));
    }
    result.removed = await this.#collect(wanted);
    await this.#collectObjectFiles(objects);
    return result;
  }

  /**
   * Removes the files of images and boot configs that no longer exist (removed through another head,
   * whose API removed its own copy only), once as old as the grace period: `images/<uid>.img` and
   * `boot/<uid>/`; nothing else in those directories (iPXE binaries, an admin's files) is touched.
   */
  async #collectObjectFiles({ images, boots }: Objects): Promise<void> {
    const imageUids = new Set(images.map((i) => i.uid));
    const bootUids = new Set(boots.map((b) => b.uid));
    const gone = async (dir: string, pattern: RegExp, known: Set<string>, what: string): Promise<void> => {
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const name of names) {
        const uid = pattern.exec(name)?.[1];
        if (uid === undefined || known.has(uid)) continue;
        const file = join(dir, name);
        const st = await stat(file).catch(() => null);
        if (!st || this.#o.clock() - Math.max(st.ctimeMs, st.mtimeMs) < this.#o.graceMs) continue;
        await rm(file, { recursive: true, force: true });
        this.#o.log(`blobs: removed ${what}${name}, whose ${what === 'images/' ? 'image' : 'boot config'} no longer exists`);
      }
    };
    await gone(this.#o.dirs.imagesDir, /^([0-9a-f]{32})\.img$/, imageUids, 'images/');
    await gone(this.#o.dirs.bootDir, /^([0-9a-f]{32})$/, bootUids, 'boot/');
  }

  /** A look that failed (the store unavailable: a head cut off from etcd): said once, not every 10 s. */
  #failed(err: unknown): void {
    const message = errorMessage(err);
    if (message !== this.#lastError) this.#o.log(`blobs: cannot look at the store: ${message}`);
    this.#lastError = message;
  }

  async #refreshPeers(): Promise<void> {
    try {
      this.#peers = [...new Set(await this.#o.peers())];
    } catch (err) {
      // The heads' list needs etcd; without it the last known heads are still worth asking.
      if (this.#peers.length === 0) this.#o.log(`blobs: cannot list the other heads: ${errorMessage(err)}`);
    }
  }

  /** Removes blobs nothing has named for a while, and temporary files of copies that died with a process. */
  async #collect(wanted: Map<string, WantedBlob>): Promise<string[]> {
    const removed: string[] = [];
    let names: string[];
    try {
      names = await readdir(this.local.dir);
    } catch {
      return removed;
    }
    const now = this.#o.clock();
    for (const name of names) {
      const file = join(this.local.dir, name);
      const isBlob = SHA256_HEX_RE.test(name);
      if (isBlob && wanted.has(name)) continue;
      if (!isBlob && (!name.endsWith('.part') || this.#inProgress.has(file))) continue;
      const st = await stat(file).catch(() => null);
      if (!st) continue;
      // ctime moves when a link is made, so a blob just linked by an upload still counts as new.
      if (now - st.ctimeMs < (isBlob ? this.#o.graceMs : PART_MAX_AGE_MS)) continue;
      await rm(file, { force: true });
      if (isBlob) {
        removed.push(name);
        this.#o.log(`blobs: removed ${name.slice(0, 12)}…, which no image or boot config names any more`);
      }
    }
    return removed;
  }

  /**
   * Copies `want` from the first head that has it whole and right; false when none did. Only heads that
   * say they hold it are asked for it (a head that is down costs the probe's 1.5 s, not a connect timeout).
   */
  async #pull(want: WantedBlob): Promise<boolean> {
    for (const url of await this.#holdersOf(want.hex)) {
      if (this.#stopped) return false;
      try {
        await this.#pullFrom(url, want);
        return true;
      } catch (err) {
        this.#o.log(`blobs: ${want.label} from ${originOf(url)}: ${errorMessage(err)}`);
      }
    }
    return false;
  }

  async #pullFrom(url: string, want: WantedBlob): Promise<void> {
    const peer = originOf(url);
    const res = await request(url, { signal: this.#abort.signal, headersTimeout: this.#o.idleTimeoutMs, bodyTimeout: this.#o.idleTimeoutMs });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`answered HTTP ${res.statusCode}`);
    }
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared !== want.size) {
      await res.body.dump();
      throw new Error(`offers ${declared} bytes, the store says ${want.size}: not copied`);
    }
    await mkdir(this.local.dir, { recursive: true, mode: 0o755 });
    const part = join(this.local.dir, `.${want.hex}.${randomBytes(6).toString('hex')}.part`);
    this.#inProgress.add(part);
    const started = this.#o.clock();
    const mib = (n: number): string => (n / 1048576).toFixed(1);
    this.#o.log(`blobs: copying ${want.label} (${mib(want.size)} MiB, sha256 ${want.hex.slice(0, 12)}…) from ${peer}`);
    const hash = createHash('sha256');
    let got = 0;
    let said = started;
    const limit = want.size;
    const meter = new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        got += chunk.length;
        if (got > limit) {
          done(new Error(`sent more than the ${limit} bytes the store names`));
          return;
        }
        hash.update(chunk);
        const now = this.#o.clock();
        if (now - said >= PROGRESS_EVERY_MS) {
          said = now;
          this.#o.log(`blobs: ${want.label}: ${mib(got)} of ${mib(limit)} MiB (${Math.floor((got / limit) * 100)}%)`);
        }
        done(null, chunk);
      },
    });
    try {
      await pipeline(res.body as Readable, meter, createWriteStream(part, { mode: 0o644, flags: 'wx' }));
      const hex = hash.digest('hex');
      if (got !== want.size) throw new Error(`sent ${got} bytes, the store names ${want.size}: not kept`);
      if (hex !== want.hex) throw new Error(`sent bytes with sha256 ${hex}, not ${want.hex}: not kept`);
      await rename(part, this.local.path(want.hex));
    } finally {
      this.#inProgress.delete(part);
      await rm(part, { force: true });
    }
    const seconds = Math.max(this.#o.clock() - started, 1) / 1000;
    this.#o.log(`blobs: ${want.label} copied from ${peer} and verified (sha256 ${want.hex.slice(0, 12)}…, ${mib(want.size)} MiB in ${seconds.toFixed(1)} s)`);
  }

  /**
   * The URL of `hex` on a head that holds it (`http://PEER/blobs/here/<hex>`), or null when no head
   * answers that it does within the probe timeout. Answers are kept a few seconds: every boot of a
   * rack asks for the same blobs.
   */
  async holder(hex: string): Promise<string | null> {
    if (!SHA256_HEX_RE.test(hex)) return null;
    const now = this.#o.clock();
    const cached = this.#holders.get(hex);
    if (cached && now - cached.at < HOLDER_CACHE_MS) return cached.url;
    const url = await this.#probe(hex);
    if (this.#holders.size > 1000) this.#holders.clear();
    this.#holders.set(hex, { url, at: now });
    return url;
  }

  /** The first head to say it holds `hex`. */
  async #probe(hex: string): Promise<string | null> {
    try {
      return await Promise.any(this.#asks(hex));
    } catch {
      return null;
    }
  }

  /** Every head that says it holds `hex` within the probe timeout, in the order of the heads' list. */
  async #holdersOf(hex: string): Promise<string[]> {
    const answers = await Promise.allSettled(this.#asks(hex));
    return answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
  }

  /** `HEAD /blobs/here/<hex>` on every other head at once: each resolves to its URL when it answers 200. */
  #asks(hex: string): Array<Promise<string>> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.#o.probeTimeoutMs), this.#abort.signal]);
    return this.#peers.map(async (peer) => {
      const url = `${peer}${HERE_PATH}/${hex}`;
      const res = await request(url, { method: 'HEAD', signal });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
      return url;
    });
  }
}

const originOf = (url: string): string => new URL(url).origin;

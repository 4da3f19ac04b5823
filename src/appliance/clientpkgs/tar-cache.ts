// The converted TARs of STORAGE/clientpkgs/rpm, cached in STORAGE/clientpkgs/tar as `SHA256.tar.gz`,
// keyed by the SHA-256 of the RPM they came from: a changed RPM gets a new TAR, an unchanged one is never
// converted twice. A conversion writes to a temporary name in the same directory and renames it into
// place, so a reader sees a whole TAR or none; many requests for one unconverted RPM share a single
// conversion (in this process; two processes converting at once both produce the same bytes, and the
// rename makes one of them win).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { RpmFormatError } from './rpm/header.js';
import { convertRpmToTarGz, DebToTarRefused } from './rpm/rpm2tar.js';

export interface CachedTar {
  /** The cached `.tar.gz`. */
  path: string;
  /** SHA-256 of the RPM it was made from. */
  rpmSha256: string;
  /** True when this call (or the one it joined) converted it, false when it was cached already. */
  converted: boolean;
}

/** SHA-256 (hex) of a file's content, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), hash);
  return hash.digest('hex');
}

export class RpmTarCache {
  readonly dir: string;
  /** Conversions started by this cache (for tests and the listing). */
  conversions = 0;
  readonly #inflight = new Map<string, Promise<CachedTar>>();
  /** Remembered checksums, so asking again for an unchanged RPM does not read it again. */
  readonly #sums = new Map<string, { identity: string; sha256: Promise<string> }>();

  readonly #log: (line: string) => void;

  /** `tarDir` is STORAGE/clientpkgs/tar (it must exist); `log` gets a line per conversion made. */
  constructor(tarDir: string, log: (line: string) => void = () => {}) {
    this.dir = tarDir;
    this.#log = log;
  }

  /** Where the TAR of the RPM with this SHA-256 is (or would be) cached. */
  pathFor(rpmSha256: string): string {
    return join(this.dir, `${rpmSha256}.tar.gz`);
  }

  /**
   * The cached TAR of the RPM at `rpmPath`, converting it first when needed. A DEB is refused with
   * DebToTarRefused; a corrupt or truncated RPM with RpmFormatError, and then nothing is cached.
   */
  async tarFor(rpmPath: string): Promise<CachedTar> {
    if (rpmPath.endsWith('.deb') || (await isArArchive(rpmPath))) throw new DebToTarRefused(rpmPath);
    const rpmSha256 = await this.#sha256(rpmPath);
    const path = this.pathFor(rpmSha256);
    // No await between looking for a running conversion and registering a new one: that is what makes
    // concurrent callers share it.
    const running = this.#inflight.get(rpmSha256);
    if (running) return running;
    const flight = this.#cachedOrConvert(rpmPath, rpmSha256, path).finally(() => this.#inflight.delete(rpmSha256));
    this.#inflight.set(rpmSha256, flight);
    return flight;
  }

  async #cachedOrConvert(rpmPath: string, rpmSha256: string, path: string): Promise<CachedTar> {
    if (await exists(path)) return { path, rpmSha256, converted: false };
    this.conversions++;
    const tmp = join(this.dir, `.${rpmSha256}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    const started = performance.now();
    try {
      const { entries } = await convertRpmToTarGz(rpmPath, tmp, rpmSha256);
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      this.#log(`${basename(rpmPath)} converted to TAR ${basename(path)} (${entries} entries, ${Math.round(performance.now() - started)} ms)`);
    } catch (err) {
      await rm(tmp, { force: true });
      if (err instanceof RpmFormatError) err.message = `${rpmPath}: ${err.message}`;
      throw err;
    }
    return { path, rpmSha256, converted: true };
  }

  /** True when the TAR of the RPM at `rpmPath` is in the cache already (nothing is converted). */
  async isCached(rpmPath: string): Promise<boolean> {
    return exists(this.pathFor(await this.#sha256(rpmPath)));
  }

  async #sha256(file: string): Promise<string> {
    const info = await stat(file);
    if (!info.isFile()) throw new Error(`${file} is not a regular file`);
    const identity = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
    const known = this.#sums.get(file);
    if (known?.identity === identity) return known.sha256;
    // Remembered while it runs too, so concurrent requests read the file once.
    const sha256 = sha256File(file);
    this.#sums.set(file, { identity, sha256 });
    sha256.catch(() => this.#sums.delete(file));
    return sha256;
  }
}

/** A DEB is an ar archive. */
async function isArArchive(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(8), 0, 8, 0);
    return bytesRead === 8 && buffer.toString('latin1') === '!<arch>\n';
  } finally {
    await fh.close();
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

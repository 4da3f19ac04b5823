// Node secrets (docs/BOOT.md, "Node secrets"): a random secret per boot, handed to a node in its iPXE
// script only when the node asks from its own assigned address, stored only as a SHA-256 hash, and
// required with every status report. Refused reports are counted and logged (rate limited), never stored.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** The header the initramfs and the node agent send the secret in (never the URL: URLs end up in logs). */
export const NODE_SECRET_HEADER = 'x-cw-node-secret';
/** The kernel parameter that carries the secret to the initramfs. */
export const SECRET_PARAM = 'cw.secret';

/** 32 random bytes as base64url: 43 characters of `A-Za-z0-9_-`, inert in iPXE scripts and command lines. */
const SECRET_RE = /^[A-Za-z0-9_-]{43}$/;
const HASH_RE = /^[0-9a-f]{64}$/;

/** A fresh secret: 256 random bits, base64url. Example: newNodeSecret() → 'q3V…' (43 characters). */
export function newNodeSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Whether `value` has the form of a node secret (what a script may carry). */
export function isNodeSecret(value: unknown): value is string {
  return typeof value === 'string' && SECRET_RE.test(value);
}

/**
 * The stored form of a secret: SHA-256, hex. A plain hash is enough for 256 random bits (nothing to
 * guess); it keeps a copy of the database from being a list of working secrets.
 * Example: hashNodeSecret(s) → 64 hex digits.
 */
export function hashNodeSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Why a report was refused: no secret sent, or one that is not the node's current one. */
export type SecretRefusal = 'missing' | 'wrong';

/**
 * Checks a secret sent with a report against the stored hash: 'ok', or why not. Hashes are compared in
 * constant time, so the time taken tells nothing about how much of the secret was right. A node without a
 * stored hash accepts nothing. Example: checkNodeSecret(header, await store.nodeSecretHash(uid)).
 */
export function checkNodeSecret(sent: unknown, storedHash: string | undefined): 'ok' | SecretRefusal {
  if (typeof sent !== 'string' || sent === '') return 'missing';
  const stored = storedHash !== undefined && HASH_RE.test(storedHash) ? storedHash : null;
  // Without a stored hash the comparison still runs (against zeros), for the same work either way.
  const same = timingSafeEqual(Buffer.from(hashNodeSecret(sent), 'hex'), Buffer.from(stored ?? '0'.repeat(64), 'hex'));
  return same && stored !== null ? 'ok' : 'wrong';
}

/** What admins see of refused reports since the API started. */
export interface RefusedReports {
  /** Every refused report. */
  total: number;
  /** Without a secret. */
  missing: number;
  /** With a secret that is not the node's current one. */
  wrong: number;
  /** The latest refusal, or null. */
  last: { at: string; source: string; mac: string; reason: SecretRefusal } | null;
}

export interface RefusalCounterOptions {
  log: (line: string) => void;
  /** Milliseconds since the epoch (default Date.now). */
  clock?: () => number;
  /** One log line per source at most this often; the rest are summed into the next one. Default 60 s. */
  logEveryMs?: number;
  /** Sources remembered for the rate limit of the log; beyond it the oldest are forgotten. Default 1024. */
  maxSources?: number;
}

/**
 * Counts refused reports and logs them with their source address: the first of a source at once, then
 * at most one line per `logEveryMs` saying how many more came, so a flood cannot drown the log.
 * Example: counter.refuse('10.0.0.66', '52:54:00:00:00:01', 'wrong').
 */
export class RefusalCounter {
  readonly #log: (line: string) => void;
  readonly #clock: () => number;
  readonly #every: number;
  readonly #maxSources: number;
  readonly #sources = new Map<string, { loggedAt: number; unlogged: number }>();
  #stats: RefusedReports = { total: 0, missing: 0, wrong: 0, last: null };

  constructor(options: RefusalCounterOptions) {
    this.#log = options.log;
    this.#clock = options.clock ?? Date.now;
    this.#every = options.logEveryMs ?? 60_000;
    this.#maxSources = options.maxSources ?? 1024;
  }

  refuse(source: string, mac: string, reason: SecretRefusal): void {
    const now = this.#clock();
    const s = this.#stats;
    this.#stats = {
      total: s.total + 1,
      missing: s.missing + (reason === 'missing' ? 1 : 0),
      wrong: s.wrong + (reason === 'wrong' ? 1 : 0),
      last: { at: new Date(now).toISOString(), source, mac, reason },
    };
    const seen = this.#sources.get(source);
    if (seen && now - seen.loggedAt < this.#every) {
      seen.unlogged++;
      return;
    }
    const more = seen && seen.unlogged > 0 ? ` (and ${seen.unlogged} more from ${source} since the last line)` : '';
    this.#sources.delete(source);
    if (this.#sources.size >= this.#maxSources) {
      const oldest = this.#sources.keys().next().value;
      if (oldest !== undefined) this.#sources.delete(oldest);
    }
    this.#sources.set(source, { loggedAt: now, unlogged: 0 });
    const why = reason === 'missing' ? 'without a node secret' : 'with a wrong node secret';
    this.#log(`refused a status report for ${mac} from ${source} ${why}${more}`);
  }

  /** The counts so far (a copy). */
  stats(): RefusedReports {
    return { ...this.#stats, last: this.#stats.last && { ...this.#stats.last } };
  }
}

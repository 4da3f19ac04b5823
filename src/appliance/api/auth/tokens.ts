import { randomBytes } from 'node:crypto';

export interface TokenGrant {
  user: string;
  /**
   * Which registration of `user` the token was issued to (`adminGeneration`): a removed admin, or one
   * whose key was replaced or who was added again, no longer matches it.
   */
  generation: string;
  /** ms since the epoch. */
  expiresAt: number;
}

export interface TokenBookOptions {
  ttlMs: number;
  now: () => number;
  /** Most live tokens kept; the oldest are dropped beyond it. */
  maxSize?: number;
}

/**
 * Bearer tokens, in memory only: 32 random bytes (base64url), each valid for `ttlMs` from issue.
 * A restart of the API logs everyone out, which is the point of keeping them nowhere else.
 */
export class TokenBook {
  readonly ttlMs: number;
  readonly #now: () => number;
  readonly #maxSize: number;
  /** token -> grant; Map order is issue order, so expiries grow along it. */
  readonly #grants = new Map<string, TokenGrant>();

  constructor(options: TokenBookOptions) {
    if (!(options.ttlMs > 0)) throw new Error('token lifetime must be positive');
    this.ttlMs = options.ttlMs;
    this.#now = options.now;
    this.#maxSize = options.maxSize ?? 100_000;
  }

  issue(user: string, generation: string): { token: string; expiresAt: number } {
    const now = this.#now();
    this.#sweep(now);
    while (this.#grants.size >= this.#maxSize) {
      const oldest = this.#grants.keys().next().value;
      if (oldest === undefined) break;
      this.#grants.delete(oldest);
    }
    const token = randomBytes(32).toString('base64url');
    const grant = { user, generation, expiresAt: now + this.ttlMs };
    this.#grants.set(token, grant);
    return { token, expiresAt: grant.expiresAt };
  }

  /** The grant of a live token; undefined for unknown or expired ones (which are forgotten). */
  check(token: string): TokenGrant | undefined {
    const grant = this.#grants.get(token);
    if (!grant) return undefined;
    if (this.#now() >= grant.expiresAt) {
      this.#grants.delete(token);
      return undefined;
    }
    return grant;
  }

  revoke(token: string): boolean {
    return this.#grants.delete(token);
  }

  /** Drops every token of `user`, or only those of one `generation` (e.g. after its key was replaced). */
  revokeUser(user: string, generation?: string): void {
    for (const [token, grant] of this.#grants) {
      if (grant.user === user && (generation === undefined || grant.generation === generation)) this.#grants.delete(token);
    }
  }

  get size(): number {
    return this.#grants.size;
  }

  #sweep(now: number): void {
    for (const [token, grant] of this.#grants) {
      if (grant.expiresAt > now) break;
      this.#grants.delete(token);
    }
  }
}

/** Counts failed logins per source in a sliding window; `blocked` once `limit` failures are within it. */
export class FailureLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #failures = new Map<string, number[]>();

  constructor(limit: number, windowMs: number, now: () => number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** ms until `source` may try again, or 0 when it may now. */
  retryAfter(source: string): number {
    const recent = this.#recent(source);
    if (recent.length < this.#limit) return 0;
    return Math.max(1, (recent[recent.length - this.#limit] as number) + this.#windowMs - this.#now());
  }

  fail(source: string): void {
    const recent = this.#recent(source);
    recent.push(this.#now());
    this.#failures.set(source, recent);
    if (this.#failures.size > 10_000) {
      for (const key of this.#failures.keys()) {
        if (this.#recent(key).length === 0) this.#failures.delete(key);
      }
    }
  }

  succeed(source: string): void {
    this.#failures.delete(source);
  }

  #recent(source: string): number[] {
    const since = this.#now() - this.#windowMs;
    const list = (this.#failures.get(source) ?? []).filter((t) => t > since);
    if (list.length === 0) this.#failures.delete(source);
    return list;
  }
}

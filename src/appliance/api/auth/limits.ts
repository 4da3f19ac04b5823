// Limits of the anonymous edge. Hand-written: @fastify/rate-limit would be a new dependency of the image
// for two routes and keys on its own idea of the client address, while these share the one source rule
// of the root lockout (sourceOf) and its injectable clock; no npm semaphore bounds its waiting queue.

export interface RateOptions {
  /** Requests a source may send at once after a quiet spell. */
  burst: number;
  /** Requests per second a source may keep sending. */
  perSecond: number;
}

/** A token bucket per source: `burst` requests at once, refilled at `perSecond`. */
export class RateLimiter {
  readonly #burst: number;
  readonly #perMs: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(options: RateOptions, now: () => number) {
    if (!(options.burst >= 1) || !(options.perSecond > 0)) throw new Error('a rate limit needs burst >= 1 and a positive rate');
    this.#burst = options.burst;
    this.#perMs = options.perSecond / 1000;
    this.#now = now;
  }

  /** Takes one request of `source`: 0 when it may go ahead, else ms until it may. */
  take(source: string): number {
    const now = this.#now();
    const bucket = this.#buckets.get(source);
    const tokens = bucket ? Math.min(this.#burst, bucket.tokens + (now - bucket.at) * this.#perMs) : this.#burst;
    if (tokens < 1) {
      if (bucket) Object.assign(bucket, { tokens, at: now });
      return Math.max(1, Math.ceil((1 - tokens) / this.#perMs));
    }
    if (this.#buckets.size >= 10_000 && !bucket) this.#sweep(now);
    this.#buckets.set(source, { tokens: tokens - 1, at: now });
    return 0;
  }

  /** Forgets sources whose bucket is full again (they look like new ones). */
  #sweep(now: number): void {
    for (const [source, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.at) * this.#perMs >= this.#burst) this.#buckets.delete(source);
    }
  }
}

/** Thrown by `Gate.run` when its queue is full. */
export class GateFullError extends Error {
  constructor() {
    super('too many checks waiting');
    this.name = 'GateFullError';
  }
}

/**
 * Runs at most `concurrent` tasks at once; up to `queue` more wait their turn, further ones are refused
 * at once (GateFullError). Keeps a burst of scrypt checks (64 MiB each, on libuv's four threads) from
 * taking every thread the file uploads need.
 */
export class Gate {
  readonly #concurrent: number;
  readonly #queue: number;
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(concurrent: number, queue: number) {
    if (!(concurrent >= 1) || !(queue >= 0)) throw new Error('a gate needs concurrent >= 1 and queue >= 0');
    this.#concurrent = concurrent;
    this.#queue = queue;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#concurrent) {
      if (this.#waiting.length >= this.#queue) throw new GateFullError();
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await task();
    } finally {
      // The slot passes straight to the next waiter, so #running stays counted for it.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}

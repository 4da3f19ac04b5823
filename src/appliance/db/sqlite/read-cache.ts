/**
 * Objects read by key (a node by the id it was asked for, an admin by name), kept until the database may
 * have changed: on every write through this connection (`invalidate`), and when SQLite's data version
 * moves, i.e. another process committed (`cw-appliance admin-add` shares the file). The data version is
 * asked at most once per `foreignCheckMs`, so another process's commit is seen that much later at worst.
 *
 * Values are frozen: every caller gets the same object.
 */
export class ReadCache {
  readonly #maps = new Map<string, Map<string, unknown>>();
  readonly #maxEntries: number;
  readonly #foreignCheckMs: number;
  readonly #dataVersion: () => number;
  readonly #now: () => number;
  #entries = 0;
  #version: number | undefined;
  #checkedAt = -Infinity;

  constructor(options: { dataVersion: () => number; maxEntries?: number; foreignCheckMs?: number; now?: () => number }) {
    this.#dataVersion = options.dataVersion;
    this.#maxEntries = options.maxEntries ?? 50_000;
    this.#foreignCheckMs = options.foreignCheckMs ?? 1;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The value of `key` in `space`, read with `load` (synchronously) unless known. */
  get<T>(space: string, key: string, load: () => T): T {
    this.#checkForeign();
    const known = this.#maps.get(space);
    if (known?.has(key)) return known.get(key) as T;
    const value = deepFreeze(load());
    if (this.#entries >= this.#maxEntries) this.invalidate();
    let map = this.#maps.get(space);
    if (!map) this.#maps.set(space, (map = new Map()));
    map.set(key, value);
    this.#entries++;
    return value;
  }

  /** Forgets everything (after a write). */
  invalidate(): void {
    this.#maps.clear();
    this.#entries = 0;
  }

  #checkForeign(): void {
    const now = this.#now();
    if (now - this.#checkedAt < this.#foreignCheckMs) return;
    this.#checkedAt = now;
    const version = this.#dataVersion();
    if (version !== this.#version) {
      this.#version = version;
      this.invalidate();
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

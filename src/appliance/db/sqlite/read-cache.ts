/**
 * Objects read by key (a node by the id it was asked for, an admin by name), kept until the database may
 * have changed: on every write through this connection (`invalidate`, or `forget` of the one object a
 * write touched), and when SQLite's data version moves, i.e. another process committed (`cw-appliance
 * admin-add` shares the file). The data version is asked at most once per `foreignCheckMs`, so another
 * process's commit is seen that much later at worst.
 *
 * Values are frozen: every caller gets the same object.
 */
export class ReadCache {
  /** `space \0 key` -> value. */
  readonly #values = new Map<string, unknown>();
  /** tag (e.g. a node's uid) -> the entries holding that object, under whichever key it was asked for. */
  readonly #tagged = new Map<string, string[]>();
  readonly #maxEntries: number;
  readonly #foreignCheckMs: number;
  readonly #dataVersion: () => number;
  readonly #now: () => number;
  #version: number | undefined;
  #checkedAt = -Infinity;

  constructor(options: { dataVersion: () => number; maxEntries?: number; foreignCheckMs?: number; now?: () => number }) {
    this.#dataVersion = options.dataVersion;
    this.#maxEntries = options.maxEntries ?? 50_000;
    this.#foreignCheckMs = options.foreignCheckMs ?? 1;
    this.#now = options.now ?? (() => performance.now());
  }

  /**
   * The value of `key` in `space`, read with `load` (synchronously) unless known. `tagOf` names the
   * object a value is (a node's uid), so that `forget` can drop it under every key it was asked by.
   */
  get<T>(space: string, key: string, load: () => T, tagOf?: (value: T) => string | undefined): T {
    this.#checkForeign();
    const entry = `${space}\0${key}`;
    if (this.#values.has(entry)) return this.#values.get(entry) as T;
    const value = deepFreeze(load());
    if (this.#values.size >= this.#maxEntries) this.invalidate();
    this.#values.set(entry, value);
    const tag = tagOf?.(value);
    if (tag !== undefined) {
      const entries = this.#tagged.get(tag);
      if (entries) entries.push(entry);
      else this.#tagged.set(tag, [entry]);
    }
    return value;
  }

  /** Forgets everything (after a write that may have changed anything). */
  invalidate(): void {
    this.#values.clear();
    this.#tagged.clear();
  }

  /**
   * Forgets one object (after a write that changed it alone, e.g. a node's status report). Entries that
   * did not find it (undefined) are kept: such a write creates nothing.
   */
  forget(tag: string): void {
    for (const entry of this.#tagged.get(tag) ?? []) this.#values.delete(entry);
    this.#tagged.delete(tag);
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

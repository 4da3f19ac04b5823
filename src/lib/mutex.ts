/** Runs async sections one at a time, in call order. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  /** No section running or waiting. */
  get idle(): boolean {
    return this.#pending === 0;
  }

  run<T>(section: () => T | Promise<T>): Promise<T> {
    this.#pending++;
    const result = this.#tail.then(section).finally(() => {
      this.#pending--;
    });
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * One Mutex per key, made on first use and dropped when idle: sections with the same key run one at a
 * time, in call order; different keys do not wait for each other. (A few lines on the Mutex above, so
 * no dependency for it.)
 */
export class KeyedMutex {
  #locks = new Map<string, Mutex>();

  run<T>(key: string, section: () => T | Promise<T>): Promise<T> {
    let lock = this.#locks.get(key);
    if (!lock) this.#locks.set(key, (lock = new Mutex()));
    const held = lock;
    return held.run(section).finally(() => {
      if (held.idle && this.#locks.get(key) === held) this.#locks.delete(key);
    });
  }

  /** Keys with a section running or waiting (for tests). */
  get size(): number {
    return this.#locks.size;
  }
}

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

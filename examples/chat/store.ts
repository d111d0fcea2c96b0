/**
 * @module
 * Where a chat device keeps what must never leave it: its identity keys, the private halves of
 * its KeyPackages, each group's MLS state with the `seq` it reflects, and the decrypted
 * transcript. A small key-value port with one atomic multi-key write, so an MLS state and the
 * `seq` and messages it covers are saved together (a crash never leaves them apart).
 * {@link MemoryStore} serves tests; the browser app uses `IdbStore` (IndexedDB).
 */

/** A device-local key-value store of structured-cloneable values. */
export interface ChatStore {
  get<T>(key: string): Promise<T | undefined>;
  /** Writes every entry at once (all or nothing); `undefined` deletes a key. */
  put(entries: Record<string, unknown>): Promise<void>;
  /** Keys starting with `prefix`. */
  keys(prefix: string): Promise<string[]>;
}

/** An in-memory store (values are copied in and out, as IndexedDB would). */
export class MemoryStore implements ChatStore {
  readonly #data = new Map<string, unknown>();

  get<T>(key: string): Promise<T | undefined> {
    const value = this.#data.get(key);
    return Promise.resolve(value === undefined ? undefined : structuredClone(value) as T);
  }

  put(entries: Record<string, unknown>): Promise<void> {
    for (const [key, value] of Object.entries(entries)) {
      if (value === undefined) this.#data.delete(key);
      else this.#data.set(key, structuredClone(value));
    }
    return Promise.resolve();
  }

  keys(prefix: string): Promise<string[]> {
    return Promise.resolve([...this.#data.keys()].filter((k) => k.startsWith(prefix)));
  }
}

/**
 * @module
 * The browser's {@link ChatStore}: one IndexedDB object store, one transaction per write. Keys
 * and MLS state stay in this browser profile; nothing here is ever sent to the relay.
 */

import type { ChatStore } from "./store.ts";

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** A {@link ChatStore} on IndexedDB. */
export class IdbStore implements ChatStore {
  private constructor(private readonly db: IDBDatabase) {}

  /** Opens (creating on first use) the database `name`. */
  static async open(name = "sealpost-chat"): Promise<IdbStore> {
    const open = indexedDB.open(name, 1);
    open.onupgradeneeded = () => open.result.createObjectStore("kv");
    return new IdbStore(await request(open));
  }

  async get<T>(key: string): Promise<T | undefined> {
    const tx = this.db.transaction("kv", "readonly");
    return await request(tx.objectStore("kv").get(key)) as T | undefined;
  }

  put(entries: Record<string, unknown>): Promise<void> {
    const tx = this.db.transaction("kv", "readwrite");
    const kv = tx.objectStore("kv");
    for (const [key, value] of Object.entries(entries)) {
      if (value === undefined) kv.delete(key);
      else kv.put(value, key);
    }
    return new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  async keys(prefix: string): Promise<string[]> {
    const tx = this.db.transaction("kv", "readonly");
    const range = IDBKeyRange.bound(prefix, prefix + "\uffff");
    return (await request(tx.objectStore("kv").getAllKeys(range))).map(String);
  }
}

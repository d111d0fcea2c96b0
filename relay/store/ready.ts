/**
 * @module
 * Readiness for `/readyz`: the database answers and is migrated, and the relay is not draining.
 * A database that is down may not even refuse connections quickly, so the answer comes within
 * {@link READY_TIMEOUT_MS} either way and load balancers and probes see 503 at once.
 */

import { type Db, ping } from "./database.ts";
import { isMigrated } from "./migrate.ts";

/** How long `/readyz` waits for the database before answering 503. */
export const READY_TIMEOUT_MS = 1500;

/** `promise`'s value, or `fallback` if it takes longer than `ms`. */
function within<T>(ms: number, promise: Promise<T>, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<T>((resolve) => timer = setTimeout(() => resolve(fallback), ms));
  return Promise.race([promise.catch(() => fallback), timeout]).finally(() => clearTimeout(timer));
}

/** True when the relay can take traffic: not draining, database reachable and migrated. */
export async function isReady(db: Db, draining: boolean): Promise<boolean> {
  return !draining && await within(
    READY_TIMEOUT_MS,
    (async () => await ping(db) && await isMigrated(db).catch(() => false))(),
    false,
  );
}

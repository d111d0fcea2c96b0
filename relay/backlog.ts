/**
 * @module
 * Backlog reads (replay, paging, inbox) go to the read replica when one is configured, and fall
 * back to the primary when the replica is behind what the reader already knows exists. A
 * replica is a consistent but possibly older copy: reading a prefix of a group's history from
 * it never breaks the rule of order; only a reader that has seen more than the replica holds
 * must ask the primary.
 */

import type { Db } from "./store/database.ts";
import { type Page, readPage } from "./messages.ts";

/** Reads pages of a group's messages for a device. */
export type BacklogReader = (
  group: string,
  device: string,
  after: number,
  limit: number,
  now: number,
  /** The highest `seq` the reader knows to exist (a live message it holds, or `after`). */
  known: number,
) => Promise<Page>;

/**
 * A reader over the primary and, if given, a replica.
 *
 * @example
 * ```ts
 * const read = backlogReader(db, replica, (n) => metrics.replicaFallbacks.inc(n));
 * const page = await read(group, device, 0, 500, Date.now(), 0);
 * ```
 */
export function backlogReader(primary: Db, replica?: Db, onFallback?: () => void): BacklogReader {
  if (!replica) {
    return (group, device, after, limit, now) =>
      readPage(primary, group, device, after, limit, now);
  }
  return async (group, device, after, limit, now, known) => {
    try {
      const page = await readPage(replica, group, device, after, limit, now);
      if (page.last_seq >= Math.max(after, known)) return page;
    } catch {
      // An unreachable replica is the same as a lagging one.
    }
    onFallback?.();
    return await readPage(primary, group, device, after, limit, now);
  };
}

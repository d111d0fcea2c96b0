/**
 * @module
 * Backlog reads (replay, paging, inbox) go to the read replica when one is configured, and fall
 * back to the primary when the replica is behind what the reader already knows exists. A
 * replica is a consistent but possibly older copy: reading a prefix of a group's history from
 * it never breaks the rule of order; only a reader that has seen more than the replica holds
 * must ask the primary. Two readers share the rule: pages of messages (HTTP paging) and replay
 * pages of message texts built by the database (WebSocket replay).
 */

import type { Db } from "./store/database.ts";
import { type Page, readPage, readReplayPage, type ReplayPage } from "./messages.ts";

/** Reads pages of a group's messages for a device. */
export type BacklogReader = PageReader<Page>;

/** Reads replay pages (the messages' JSON texts) of a group for a device. */
export type ReplayReader = PageReader<ReplayPage>;

/** Reads one page of a group for a device, primary or replica. */
type PageReader<P> = (
  group: string,
  device: string,
  after: number,
  limit: number,
  now: number,
  /** The highest `seq` the reader knows to exist (a live message it holds, or `after`). */
  known: number,
) => Promise<P>;

type PageRead<P> = (
  db: Db,
  group: string,
  device: string,
  after: number,
  limit: number,
  now: number,
) => Promise<P>;

/**
 * A reader of message pages over the primary and, if given, a replica.
 *
 * @example
 * ```ts
 * const read = backlogReader(db, replica, (n) => metrics.replicaFallbacks.inc(n));
 * const page = await read(group, device, 0, 500, Date.now(), 0);
 * ```
 */
export function backlogReader(primary: Db, replica?: Db, onFallback?: () => void): BacklogReader {
  return withReplica(readPage, primary, replica, onFallback);
}

/**
 * A reader of replay pages over the primary and, if given, a replica.
 *
 * @example
 * ```ts
 * const replay = replayReader(db, replica, () => metrics.replicaFallbacks.inc());
 * const page = await replay(group, device, 0, 500, Date.now(), 0);
 * ```
 */
export function replayReader(primary: Db, replica?: Db, onFallback?: () => void): ReplayReader {
  return withReplica(readReplayPage, primary, replica, onFallback);
}

function withReplica<P extends { last_seq: number }>(
  read: PageRead<P>,
  primary: Db,
  replica?: Db,
  onFallback?: () => void,
): PageReader<P> {
  if (!replica) {
    return (group, device, after, limit, now) => read(primary, group, device, after, limit, now);
  }
  return async (group, device, after, limit, now, known) => {
    try {
      const page = await read(replica, group, device, after, limit, now);
      if (page.last_seq >= Math.max(after, known)) return page;
    } catch {
      // An unreachable replica is the same as a lagging one.
    }
    onFallback?.();
    return await read(primary, group, device, after, limit, now);
  };
}

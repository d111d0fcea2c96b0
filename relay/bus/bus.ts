/**
 * @module
 * The bus port: how one instance tells the others (and its own hub) what happened. The
 * in-process implementation serves one box; a Postgres LISTEN/NOTIFY implementation serves many.
 *
 * Guarantee: events published by one instance are delivered to every subscriber of every
 * instance in publish order, and committed messages are announced atomically with their commit
 * (the announcement is sent inside the committing transaction) whenever another instance
 * listens. Delivery can be interrupted when an instance's bus connection drops, or when an
 * instance that committed alone learns of a newcomer; the bus then calls its `onGap` handlers,
 * and the hub reads everything it may have missed back from the database (every subscription
 * also detects gaps in `seq` by itself).
 */

import type { MembershipEvent, StoredMessage } from "../protocol.ts";

/** A range of committed `seq`s in one group. */
export type SeqRange = { group: string; from: number; to: number };

/** Something every instance's hub must hear about. */
export type BusEvent =
  /** Messages committed in one group, `seq` ascending. */
  | { kind: "messages"; group: string; messages: StoredMessage[] }
  /** A membership change; `members` are the accounts to tell (remaining, added and removed). */
  /** `invited`: an added account that has not accepted yet (its presence stays hidden). */
  | {
    kind: "membership";
    group: string;
    event: MembershipEvent;
    account: string;
    notify: string[];
    invited?: boolean;
  }
  /** A device was revoked or deleted: close its connections with 4003. */
  | { kind: "revoked"; device: string }
  /** An ephemeral message: relayed to connected, subscribed devices only. */
  | {
    kind: "eph";
    /** The instance that already delivered it locally. */
    origin: string;
    group: string;
    from: { account: string; device: string };
    body: string;
    to?: string[];
  }
  /** A device came online (first connection) or went offline (last connection closed). */
  | { kind: "presence"; device: string; account: string; groups: string[]; online: boolean };

/** How one commit is announced to other instances (see {@link Bus.announcement}). */
export type Announcement = {
  /** The NOTIFY channel, or null when no other instance listens. */
  channel: string | null;
  origin: string;
  /** Called once when the commit's statement has finished (committed or failed). */
  settled(): void;
};

/** A bus. */
export interface Bus {
  /**
   * Publishes an event to every instance, including this one. A `messages` event is delivered
   * locally only: other instances learn of the messages from {@link Bus.announcement}.
   */
  publish(event: BusEvent): void;
  /**
   * How one commit's ranges reach other instances: group commit asks before each
   * `sealpost_commit` and passes `channel` and `origin`, and the statement sends
   * `{"o":origin,"k":"m","r":[[group,from,to],…]}` with `pg_notify(channel, …)` inside the
   * committing transaction. `channel` is null while no other instance listens (nothing is
   * sent: a NOTIFY serializes every notifying commit of the cluster, fsync included); group commit
   * calls `settled()` once the statement has finished either way, so the bus knows when no
   * unannounced commit is in flight. Absent on a bus with no other instances.
   */
  announcement?(): Announcement;
  /** Registers a handler called when events may have been missed (after a reconnect). */
  onGap(handler: () => void): void;
  /**
   * False while events from other instances may be going unheard (a listening connection that
   * is down and not yet back); a cache kept fresh by bus events must not be trusted meanwhile.
   * Absent or true on a bus that never misses events.
   */
  readonly hearing?: boolean;
  /**
   * Tells a bus that reads messages back which groups anyone here follows (others skip the
   * read). A bus that carries messages itself may ignore it.
   */
  setInterest?(wants: (group: string) => boolean): void;
  /** Where a cross-instance bus reports the lag of what it receives (metrics). */
  setLagObserver?(observe: (ms: number) => void): void;
  /** Registers a handler; returns the function that removes it. */
  subscribe(handler: (event: BusEvent) => void): () => void;
  /** Stops delivering. */
  close(): Promise<void>;
}

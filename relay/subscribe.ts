/**
 * @module
 * One device's subscription to one group, and the rule that makes the seam between replay and
 * live delivery safe. A subscription remembers the highest `seq` it has passed (`last`). Live
 * messages are delivered only when they are exactly the next `seq`; anything else — a
 * subscription still replaying, or a gap because an event was late or lost — is buffered and
 * the subscription catches up from the database, reading pages after `last` together with the
 * group's `last_seq` in one snapshot, then drains the buffer. So a device never sees a gap, a
 * duplicate or a reordering, whatever the timing of commits, bus events and replays.
 *
 * A replay is streamed: while one page is written to the socket the next one is already being
 * read, so the database and the relay work at the same time and the first frames leave after
 * the first page's read. At most two pages per subscription are in memory; the socket side is
 * bounded by the connection's pacing (`Connection.sendPaced`: wait while the client has more than
 * the buffer limit unread, close `4009` if it reads nothing for 30 s).
 */

import type { ReplayReader } from "./backlog.ts";
import { type ReplayPage, type StoredMessage, visibleTo } from "./messages.ts";

/** Where a subscription delivers. */
export interface SubscriptionSink {
  readonly device: string;
  /** Sends one live message; returns false if the connection can take no more (closed or slow). */
  deliver(message: StoredMessage): boolean;
  /**
   * Sends a page of replayed messages, given as their JSON texts (`seq` ascending, all visible
   * to the device) — one `msg` frame each, or `msgs` frames when the client asked for batches —
   * waiting while the client reads; false when it gave up.
   */
  replay(texts: string[]): Promise<boolean>;
  /** Tells the client the replay reached the group's latest `seq`. */
  synced(group: string, seq: number): void;
  /** True while the connection is open. */
  readonly open: boolean;
}

/** Largest number of live messages buffered during a replay before relying on a re-read. */
const MAX_BUFFER = 10_000;
/** How long a live gap may wait for the missing messages to arrive before reading them. */
const GAP_GRACE_MS = 50;
/**
 * Messages read per page during a replay: a small first page so the first frames leave soon,
 * then larger ones (fewer queries; bench/README.md, "Replay"). Two pages are in memory while one
 * is written: about 1 MB of text at 500-byte messages; with large bodies `readReplayPage` cuts a
 * page at 1 MiB of them, so about 2 MiB at most.
 */
const FIRST_PAGE = 250;
const PAGE = 1000;

/** A device's subscription to one group. */
export class Subscription {
  #buffer: StoredMessage[] = [];
  #overflowed = false;
  #catching = false;
  /** A {@link kick} came during a catch-up, which must then read again before going live. */
  #kicked = false;
  #synced = false;
  #live = false;
  #closed = false;
  #gapTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly group: string,
    private readonly sink: SubscriptionSink,
    /** The highest seq already passed to (or skipped for) the device. */
    public last: number,
    private readonly read: ReplayReader,
    private readonly now: () => number,
    /** Called when a catch-up fails (database down): the connection should be closed. */
    private readonly onError: (error: unknown) => void,
  ) {}

  /** True after the initial replay finished and live delivery began. */
  get live(): boolean {
    return this.#live;
  }

  /** Stops delivering (unsubscribe, membership removed, connection closed). */
  close(): void {
    this.#closed = true;
    this.#buffer = [];
    this.#stopGapWait();
  }

  /** Reads back from the database in case live events were missed (bus reconnect). */
  kick(): void {
    if (this.#closed) return;
    this.#stopGapWait();
    this.#live = false;
    // A catch-up under way may have read before what was missed: it reads once more at its end.
    if (this.#catching) this.#kicked = true;
    else this.#catchUp();
  }

  /** Starts the replay; `synced` follows it. */
  start(): void {
    this.#catchUp();
  }

  /** Offers live messages of this group, `seq` ascending. */
  offer(messages: StoredMessage[]): void {
    if (this.#closed) return;
    if (!this.#live) {
      this.#bufferAll(messages);
      if (this.#gapTimer !== undefined) this.#tryFillGap();
      return;
    }
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i];
      if (message.seq <= this.last) continue;
      if (message.seq !== this.last + 1) {
        // With several instances, a commit made here is often announced before an earlier one
        // made elsewhere arrives over the bus: wait a moment for it before reading the database.
        this.#live = false;
        this.#bufferAll(messages.slice(i));
        this.#gapTimer = setTimeout(() => {
          this.#gapTimer = undefined;
          this.#catchUp();
        }, GAP_GRACE_MS);
        return;
      }
      this.last = message.seq;
      if (visibleTo(message, this.sink.device) && !this.sink.deliver(message)) return;
    }
  }

  /** During a gap wait: delivers what became contiguous; back to live once nothing is missing. */
  #tryFillGap(): void {
    if (this.#overflowed) return;
    if (this.#drainBuffer()) return;
    this.#stopGapWait();
    this.#live = true;
  }

  #stopGapWait(): void {
    if (this.#gapTimer !== undefined) clearTimeout(this.#gapTimer);
    this.#gapTimer = undefined;
  }

  #bufferAll(messages: StoredMessage[]): void {
    if (this.#buffer.length + messages.length > MAX_BUFFER) {
      // Too much to hold: forget it and read it back from the database instead.
      this.#buffer = [];
      this.#overflowed = true;
      return;
    }
    for (const m of messages) this.#buffer.push(m);
  }

  async #catchUp(): Promise<void> {
    if (this.#catching || this.#closed) return;
    this.#catching = true;
    // The page after the one being written, read meanwhile (its rejection is handled when awaited).
    let ahead: { after: number; page: Promise<ReplayPage> } | undefined;
    try {
      // Each round either advances `last` or ends; bounded so a broken invariant cannot spin.
      for (let round = 0; round < 100_000; round++) {
        if (this.#closed || !this.sink.open) return;
        this.#overflowed = false;
        // Every page is read after the current `last`, so all it holds is new.
        const page = ahead?.after === this.last
          ? await ahead.page
          : await this.#readAfter(this.last, round === 0 ? FIRST_PAGE : PAGE);
        ahead = undefined;
        if (this.#closed || !this.sink.open) return;
        if (page.texts.length > 0 && page.last > this.last) {
          this.last = page.last;
          if (page.has_more) {
            ahead = { after: this.last, page: this.#readAfter(this.last, PAGE) };
            ahead.page.catch(() => {});
          }
          if (!(await this.sink.replay(page.texts)) || this.#closed) return;
        }
        if (page.has_more) continue;
        if (page.last_seq > this.last) this.last = page.last_seq;
        if (this.#overflowed) continue;
        if (this.#drainBuffer()) continue;
        if (this.#kicked) {
          this.#kicked = false;
          continue;
        }
        this.#live = true;
        if (!this.#synced) {
          this.#synced = true;
          this.sink.synced(this.group, this.last);
        }
        return;
      }
    } catch (error) {
      this.onError(error);
    } finally {
      this.#catching = false;
    }
  }

  /** Reads the page after `after`, with the highest `seq` known to exist (for the replica). */
  #readAfter(after: number, limit: number): Promise<ReplayPage> {
    const known = this.#buffer.reduce((max, m) => Math.max(max, m.seq), after);
    return this.read(this.group, this.sink.device, after, limit, this.now(), known);
  }

  /** Delivers buffered messages that continue `last`; returns true if a gap remains. */
  #drainBuffer(): boolean {
    const buffer = this.#buffer.sort((a, b) => a.seq - b.seq);
    this.#buffer = [];
    for (let i = 0; i < buffer.length; i++) {
      const message = buffer[i];
      if (message.seq <= this.last) continue;
      if (message.seq !== this.last + 1) {
        this.#buffer = buffer.slice(i);
        return true;
      }
      this.last = message.seq;
      if (visibleTo(message, this.sink.device) && !this.sink.deliver(message)) return false;
    }
    return false;
  }
}

/**
 * @module
 * Cursors: how far each device has acknowledged each group. A cursor never moves backwards and
 * never past the group's `last_seq`. WebSocket acks are frequent, so they are held in memory and
 * written in one statement every {@link ACK_FLUSH_MS}; reads merge the unflushed values. An ack
 * lost in a crash only means a few messages are delivered again (delivery is at least once).
 * HTTP acks are written before the `204`.
 */

import { sql } from "kysely";
import type { Db } from "./store/database.ts";
import type { Logger } from "./base/log.ts";

/** How often buffered acks are written. */
export const ACK_FLUSH_MS = 200;

/** Stores cursors, buffering WebSocket acks. */
export class CursorStore {
  /** device → group → seq */
  #pending = new Map<string, Map<string, number>>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly db: Db, private readonly log: Logger) {}

  /** Buffers an ack; the highest seq per (device, group) wins. */
  ack(device: string, group: string, seq: number): void {
    let groups = this.#pending.get(device);
    if (!groups) this.#pending.set(device, groups = new Map());
    if ((groups.get(group) ?? -1) < seq) groups.set(group, seq);
  }

  /** The device's unflushed cursors. */
  pending(device: string): Map<string, number> {
    return this.#pending.get(device) ?? new Map();
  }

  /** Writes acks now; returns when they are durable. */
  async write(entries: { device: string; group: string; seq: number }[]): Promise<void> {
    if (entries.length === 0) return;
    await sql`
      insert into cursors (device_id, group_id, seq)
      select u.d, u.g, least(u.s, g.last_seq)
      from unnest(${entries.map((e) => e.device)}::text[], ${entries.map((e) => e.group)}::text[],
                  ${entries.map((e) => e.seq)}::bigint[]) as u(d, g, s)
      join groups g on g.id = u.g
      join devices d on d.id = u.d
      on conflict (device_id, group_id)
      do update set seq = greatest(cursors.seq, excluded.seq)`.execute(this.db);
  }

  /** Reads a device's stored cursors merged with unflushed ones. */
  async cursorsOf(device: string): Promise<Map<string, number>> {
    const rows = await this.db.selectFrom("cursors").select(["group_id", "seq"])
      .where("device_id", "=", device).execute();
    const merged = new Map(rows.map((r) => [r.group_id, r.seq]));
    for (const [group, seq] of this.pending(device)) {
      if ((merged.get(group) ?? -1) < seq) merged.set(group, seq);
    }
    return merged;
  }

  /** Writes every buffered ack. */
  async flush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    const entries = [];
    for (const [device, groups] of batch) {
      for (const [group, seq] of groups) entries.push({ device, group, seq });
    }
    try {
      // Sorted so concurrent flushes from several instances lock rows in one order.
      entries.sort((a, b) =>
        a.device < b.device ? -1 : a.device > b.device ? 1 : a.group < b.group ? -1 : 1
      );
      await this.write(entries);
    } catch (error) {
      for (const e of entries) this.ack(e.device, e.group, e.seq);
      throw error;
    }
  }

  start(): void {
    this.#timer ??= setInterval(() => {
      this.flush().catch((error) => this.log.warn("cursor flush failed", { error }));
    }, ACK_FLUSH_MS);
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush().catch((error) => this.log.warn("cursor flush failed", { error }));
  }
}

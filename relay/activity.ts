/**
 * @module
 * Device activity (`last_seen_at`) without a write per request: activity is noted in memory and
 * flushed in one statement at an interval of a tenth of `inactive_after`, at most a minute, so
 * lifecycle decisions never act on stale activity. Reads of a device's status merge the unflushed
 * value, so an instance always reports what it has seen.
 *
 * What is stored is coarse (issue 16): `last_seen_at` is written rounded down to
 * `SEALPOST_LAST_SEEN_GRANULARITY` (default an hour), so the database never holds when exactly a
 * device was used. The granularity is capped at a tenth of `inactive_after`, so lifecycle
 * decisions (inactive, deleted) are never off by more than that tenth.
 */

import { sql } from "kysely";
import type { Clock } from "./base/clock.ts";
import type { Db } from "./store/database.ts";
import type { Logger } from "./base/log.ts";

/** Collects device activity and writes it in batches. */
export class ActivityTracker {
  #pending = new Map<string, number>();
  #timer: ReturnType<typeof setInterval> | undefined;
  intervalMs: number;
  /** The granularity in force: the setting, capped at a tenth of `inactive_after`. */
  granularityMs: number;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly log: Logger,
    inactiveAfterMs: number,
    private readonly granularitySettingMs = 0,
  ) {
    this.intervalMs = Math.max(50, Math.min(60_000, Math.floor(inactiveAfterMs / 10)));
    this.granularityMs = Math.min(granularitySettingMs, Math.floor(inactiveAfterMs / 10));
  }

  /** `at` rounded down to the stored granularity. */
  coarse(at: number): number {
    return this.granularityMs > 0 ? at - (at % this.granularityMs) : at;
  }

  /** Notes that `device` was active now. Cheap: a map write. */
  touch(device: string): void {
    this.#pending.set(device, this.clock.now());
  }

  /** The unflushed last activity of `device`, if any. */
  pending(device: string): number | undefined {
    return this.#pending.get(device);
  }

  /** Follows a run-time change of `inactive_after`: the flush interval stays a tenth of it. */
  setInactiveAfter(inactiveAfterMs: number): void {
    this.granularityMs = Math.min(this.granularitySettingMs, Math.floor(inactiveAfterMs / 10));
    const next = Math.max(50, Math.min(60_000, Math.floor(inactiveAfterMs / 10)));
    if (next === this.intervalMs) return;
    this.intervalMs = next;
    if (this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.start();
    }
  }

  /** Starts the periodic flush. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      this.flush().catch((error) => this.log.warn("activity flush failed", { error }));
    }, this.intervalMs);
  }

  /** Writes all pending activity in one statement; never moves `last_seen_at` backwards. */
  async flush(): Promise<number> {
    if (this.#pending.size === 0) return 0;
    const batch = this.#pending;
    this.#pending = new Map();
    const ids = [...batch.keys()];
    const times = ids.map((id) => this.coarse(batch.get(id)!));
    try {
      await sql`
        update devices d set last_seen_at = greatest(d.last_seen_at, u.t)
        from unnest(${ids}::text[], ${times}::bigint[]) as u(id, t)
        where d.id = u.id`.execute(this.db);
    } catch (error) {
      // Put the batch back (newer activity wins) so nothing is lost on a transient failure.
      for (const [id, t] of batch) {
        if ((this.#pending.get(id) ?? 0) < t) this.#pending.set(id, t);
      }
      throw error;
    }
    return ids.length;
  }

  /** Stops the timer and flushes what is left. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush().catch((error) => this.log.warn("activity flush failed", { error }));
  }
}

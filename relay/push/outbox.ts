/**
 * @module
 * The push outbox's queue, once above every sender: who gets a wake-up and when; what a wake-up
 * does once due is a dispatch round (`dispatch.ts`), which this runs on the cluster's leader.
 *
 * - **Enqueue** (any instance, off the send path): after a group commit, the committing instance
 *   notes the batch; a short moment later it looks up, in one query, the member devices with a
 *   push target that are active, not revoked, were not the sender and were addressed (`to`),
 *   drops those connected to any live instance, and writes the rest to the `push_outbox` table
 *   in one `INSERT … ON CONFLICT` — at most one pending wake-up per device (a second one
 *   coalesces; the group id is dropped when the groups differ), due no earlier than the minimum
 *   interval after the device's last wake-up.
 * - **Dispatch** (the cluster's leader only): a round every poll, or at once after an enqueue;
 *   rounds never overlap, and a full round is followed by another.
 * - **Idle wake-up** (the lifecycle job): a device close to deletion that has a target is
 *   queued one wake-up per idle spell, so an installed app checks in and is kept.
 */

import { sql } from "kysely";
import type { StoredMessage } from "../messages.ts";
import { type DispatchOptions, type DispatchReport, dispatchRound, moreDue } from "./dispatch.ts";

export {
  BACKOFF_BASE_MS,
  BACKOFF_MAX_MS,
  backoffMs,
  type DispatchReport,
  MAX_ATTEMPTS,
  targetOf,
} from "./dispatch.ts";

/** The idle wake-up comes this long before deletion (or half the inactive→delete span). */
const IDLE_MARGIN_MS = 7 * 86_400_000;

/** What the outbox needs from the relay. */
export type OutboxOptions = DispatchOptions & {
  /** Whether this instance leads (dispatches). */
  isLeader(): boolean;
  /** How often the leader looks for due rows; default 1 s. */
  pollMs?: number;
  /** How long enqueue waits to collect commits (one query per window); default 100 ms. */
  gatherMs?: number;
};

/** Devices (per group) a commit batch reached: broadcast senders and `to` recipients. */
type GroupNote = { broadcastFrom: Set<string>; direct: Set<string> };

/** The durable push outbox: enqueue after commits, dispatch rounds on the leader. */
export class PushOutbox {
  #notes = new Map<string, GroupNote>();
  #gatherTimer: ReturnType<typeof setTimeout> | undefined;
  #enqueueing: Promise<void> = Promise.resolve();
  #pollTimer: ReturnType<typeof setInterval> | undefined;
  #dispatching: Promise<DispatchReport> | null = null;
  #again = false;
  #stopped = false;

  constructor(private readonly options: OutboxOptions) {}

  /**
   * Notes messages this instance just committed; returns at once. The wake-ups are written a
   * moment later, in bulk, never on the send's path.
   */
  noteCommitted(published: StoredMessage[][]): void {
    if (this.#stopped) return;
    for (const messages of published) {
      for (const m of messages) {
        let note = this.#notes.get(m.group);
        if (!note) this.#notes.set(m.group, note = { broadcastFrom: new Set(), direct: new Set() });
        if (m.to) {
          for (const d of m.to) if (d !== m.from?.device) note.direct.add(d);
        } else {
          // A sealed message has no sender: "" is no device, so every device may be woken.
          note.broadcastFrom.add(m.from?.device ?? "");
        }
      }
    }
    if (this.#notes.size > 0 && this.#gatherTimer === undefined) {
      this.#gatherTimer = setTimeout(() => {
        this.#gatherTimer = undefined;
        this.#enqueueing = this.#enqueueing.then(() => this.#enqueue()).catch((error) =>
          this.options.log.warn("push enqueue failed", { error })
        );
      }, this.options.gatherMs ?? 100);
    }
  }

  /** Waits until noted commits are written to the outbox (tests, drain). */
  async settled(): Promise<void> {
    if (this.#gatherTimer !== undefined) {
      clearTimeout(this.#gatherTimer);
      this.#gatherTimer = undefined;
      this.#enqueueing = this.#enqueueing.then(() => this.#enqueue());
    }
    await this.#enqueueing.catch(() => {});
  }

  /** Waits until noted commits are written and no dispatch round is running. */
  async idle(): Promise<void> {
    await this.settled();
    while (this.#dispatching) await this.#dispatching.catch(() => {});
  }

  async #enqueue(): Promise<void> {
    if (this.#notes.size === 0) return;
    const notes = this.#notes;
    this.#notes = new Map();
    const { db, clock } = this.options;
    const now = clock.now();
    const inactiveBefore = now - await this.options.inactiveAfterMs();
    const rows = await sql<{ device: string; group: string }>`
      select d.id as device, gm.group_id as group from group_members gm
      join devices d on d.account_id = gm.account_id
      join push_targets t on t.device_id = d.id
      where gm.group_id = any(${[...notes.keys()]}::text[])
        and d.revoked_at is null and d.last_seen_at > ${inactiveBefore}`.execute(db);
    // device → its group, or null when several groups have news for it.
    const wake = new Map<string, string | null>();
    for (const { device, group } of rows.rows) {
      const note = notes.get(group)!;
      const reached = note.direct.has(device) || note.broadcastFrom.size > 1 ||
        (note.broadcastFrom.size === 1 && !note.broadcastFrom.has(device));
      if (!reached) continue;
      wake.set(device, wake.has(device) && wake.get(device) !== group ? null : group);
    }
    if (wake.size === 0) return;
    const online = await this.options.online([...wake.keys()]);
    const devices = [...wake.keys()].filter((d) => !online.has(d));
    if (devices.length === 0) return;
    const groups = devices.map((d) => wake.get(d) ?? null);
    const inserted = await sql`
      insert into push_outbox (device_id, group_id, reason, created_at, due_at, attempts)
      select u.device, u.grp, 'message', ${now},
        greatest(${now}::bigint, coalesce(t.last_push_at, 0) + ${this.options.minIntervalMs}), 0
      from unnest(${devices}::text[], ${groups}::text[]) as u(device, grp)
      join push_targets t on t.device_id = u.device
      on conflict (device_id) do update set
        group_id = case when push_outbox.group_id = excluded.group_id
          then push_outbox.group_id end,
        created_at = case when push_outbox.attempts > 0
          then greatest(excluded.created_at, push_outbox.created_at + 1)
          else push_outbox.created_at end
        where (push_outbox.group_id is not null
            and push_outbox.group_id is distinct from excluded.group_id)
          or push_outbox.attempts > 0`.execute(db);
    this.options.log.debug("push wake-ups queued", {
      devices: devices.length,
      rows: Number(inserted.numAffectedRows ?? 0),
    });
    this.kick();
  }

  /**
   * Queues a lifecycle wake-up for devices idle close to deletion (once per idle spell).
   * Returns how many were queued.
   */
  async wakeIdle(now: number, inactiveAfterMs: number, deleteAfterMs: number): Promise<number> {
    const margin = Math.min(IDLE_MARGIN_MS, Math.floor((deleteAfterMs - inactiveAfterMs) / 2));
    const deleteBefore = now - deleteAfterMs;
    const wakeBefore = deleteBefore + margin;
    const result = await sql`
      with due as (
        update push_targets t set idle_wake_at = ${now}
        from devices d
        where d.id = t.device_id and d.revoked_at is null
          and d.last_seen_at <= ${wakeBefore} and d.last_seen_at > ${deleteBefore}
          and (t.idle_wake_at is null or t.idle_wake_at < d.last_seen_at)
        returning t.device_id, t.last_push_at
      )
      insert into push_outbox (device_id, group_id, reason, created_at, due_at, attempts)
      select device_id, null, 'idle', ${now},
        greatest(${now}::bigint, coalesce(last_push_at, 0) + ${this.options.minIntervalMs}), 0
      from due
      on conflict (device_id) do nothing`.execute(this.options.db);
    const queued = Number(result.numAffectedRows ?? 0);
    if (queued > 0) {
      this.options.log.info("idle devices queued for a wake-up before deletion", { queued });
      this.kick();
    }
    return queued;
  }

  /** Wake-ups waiting (all instances). */
  async depth(): Promise<number> {
    const row = await this.options.db.selectFrom("push_outbox")
      .select(sql<number>`count(*)::int`.as("n")).executeTakeFirstOrThrow();
    return row.n;
  }

  /** Starts the leader's dispatch loop. */
  start(): void {
    this.#stopped = false;
    this.#pollTimer = setInterval(() => this.kick(), this.options.pollMs ?? 1000);
  }

  /** Runs a dispatch round soon, on the leader. */
  kick(): void {
    if (this.#stopped || !this.options.isLeader()) return;
    if (this.#dispatching) {
      this.#again = true;
      return;
    }
    this.dispatchOnce().catch((error) => this.options.log.warn("push dispatch failed", { error }));
  }

  /**
   * One dispatch round (after the one in progress, if any): claims due rows, sends, records.
   *
   * @example
   * ```ts
   * const report = await outbox.dispatchOnce();
   * ```
   */
  async dispatchOnce(): Promise<DispatchReport> {
    while (this.#dispatching) await this.#dispatching.catch(() => {});
    const run = dispatchRound(this.options);
    this.#dispatching = run;
    try {
      const report = await run;
      if (moreDue(report)) this.#again = true;
      return report;
    } finally {
      this.#dispatching = null;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        queueMicrotask(() => this.kick());
      }
    }
  }

  /**
   * Stops the loop, writes what was noted, and gives the round in progress a moment to finish.
   * A round cut short by the exit leaves its rows claimed; they are sent again once the lease
   * runs out (by this instance after a restart, or the next leader).
   */
  async stop(graceMs = 2_000): Promise<void> {
    this.#stopped = true;
    if (this.#pollTimer !== undefined) clearInterval(this.#pollTimer);
    this.#pollTimer = undefined;
    await this.settled();
    if (!this.#dispatching) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#dispatching.catch(() => {}),
      new Promise((resolve) => timer = setTimeout(resolve, graceMs)),
    ]);
    clearTimeout(timer);
  }
}

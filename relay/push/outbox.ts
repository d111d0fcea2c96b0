/**
 * @module
 * The push policy, once above every sender: who gets a wake-up, when, and what happens after.
 *
 * - **Enqueue** (any instance, off the send path): after a group commit, the committing instance
 *   notes the batch; a short moment later it looks up, in one query, the member devices with a
 *   push target that are active, not revoked, were not the sender and were addressed (`to`),
 *   drops those connected to any live instance, and writes the rest to the `push_outbox` table
 *   in one `INSERT … ON CONFLICT` — at most one pending wake-up per device (a second one
 *   coalesces; the group id is dropped when the groups differ), due no earlier than the minimum
 *   interval after the device's last wake-up.
 * - **Dispatch** (the cluster's leader only): due rows are claimed with a lease (so a leader that
 *   dies mid-send leaves them to its successor, and survives restarts), checked again (a device
 *   that came online, turned inactive or was revoked gets nothing), and sent through the port.
 *   `sent` clears the row and starts the interval; `gone` removes the target (and the row);
 *   `retry` reschedules with exponential backoff (or the service's `Retry-After`) until
 *   {@link MAX_ATTEMPTS}; `failed` drops the wake-up. Counts go to `push_stats` and metrics.
 * - **Idle wake-up** (the lifecycle job): a device close to deletion that has a target is
 *   queued one wake-up per idle spell, so an installed app checks in and is kept.
 */

import { sql } from "kysely";
import type { Clock } from "../base/clock.ts";
import type { Db } from "../store/database.ts";
import type { Logger } from "../base/log.ts";
import type { StoredMessage } from "../messages.ts";
import type { Metrics } from "../base/metrics.ts";
import type { PushOutboxTable, PushTargetsTable } from "../store/schema.ts";
import type { PushKind, PushOutcome, PushSender, PushTarget } from "./mod.ts";

/** Attempts before a wake-up that keeps failing transiently is dropped. */
export const MAX_ATTEMPTS = 8;
/** First retry delay; doubles per attempt up to {@link BACKOFF_MAX_MS}. */
export const BACKOFF_BASE_MS = 10_000;
export const BACKOFF_MAX_MS = 30 * 60_000;
/** A claimed row is left alone this long (then another dispatch may take it). */
const LEASE_MS = 60_000;
/** Rows per dispatch round and sends in flight at once. */
const BATCH = 200;
const CONCURRENCY = 16;
/** The idle wake-up comes this long before deletion (or half the inactive→delete span). */
const IDLE_MARGIN_MS = 7 * 86_400_000;

/** What the outbox needs from the relay. */
export type OutboxOptions = {
  db: Db;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  senders: ReadonlyMap<PushKind, PushSender>;
  minIntervalMs: number;
  /** Which of `devices` are connected to some live instance. */
  online(devices: string[]): Promise<Set<string>>;
  /** The current `inactive_after` in ms (run-time setting). */
  inactiveAfterMs(): Promise<number>;
  /** Whether this instance leads (dispatches). */
  isLeader(): boolean;
  /** How often the leader looks for due rows; default 1 s. */
  pollMs?: number;
  /** How long enqueue waits to collect commits (one query per window); default 100 ms. */
  gatherMs?: number;
};

/** What one dispatch round did. */
export type DispatchReport = {
  claimed: number;
  sent: number;
  gone: number;
  failed: number;
  retried: number;
  /** Dropped before sending: online now, inactive or revoked. */
  skipped: number;
};

/** Devices (per group) a commit batch reached: broadcast senders and `to` recipients. */
type GroupNote = { broadcastFrom: Set<string>; direct: Set<string> };

/** Exponential backoff for attempt `n` (1-based), with up to 10% jitter. */
export function backoffMs(attempt: number, random: number = Math.random()): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (1 + random * 0.1));
}

/** A stored target row as the port's {@link PushTarget}. */
export function targetOf(row: PushTargetsTable): PushTarget | null {
  switch (row.kind) {
    case "webpush":
      return row.endpoint && row.p256dh && row.auth
        ? { kind: "webpush", endpoint: row.endpoint, p256dh: row.p256dh, auth: row.auth }
        : null;
    case "unifiedpush":
      return row.endpoint
        ? {
          kind: "unifiedpush",
          endpoint: row.endpoint,
          ...(row.p256dh && row.auth ? { p256dh: row.p256dh, auth: row.auth } : {}),
        }
        : null;
    case "apns":
      return row.token && row.topic
        ? { kind: "apns", token: row.token, topic: row.topic, sandbox: row.sandbox }
        : null;
    case "fcm":
      return row.token ? { kind: "fcm", token: row.token } : null;
  }
  return null;
}

/** The durable push outbox: enqueue after commits, dispatch on the leader. */
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
          for (const d of m.to) if (d !== m.from.device) note.direct.add(d);
        } else {
          note.broadcastFrom.add(m.from.device);
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
    const run = this.#dispatch();
    this.#dispatching = run;
    try {
      return await run;
    } finally {
      this.#dispatching = null;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        queueMicrotask(() => this.kick());
      }
    }
  }

  async #dispatch(): Promise<DispatchReport> {
    const { db, clock, senders } = this.options;
    const report: DispatchReport = {
      claimed: 0,
      sent: 0,
      gone: 0,
      failed: 0,
      retried: 0,
      skipped: 0,
    };
    const now = clock.now();
    const claimed = await sql<
      Pick<PushOutboxTable, "device_id" | "group_id" | "reason" | "attempts" | "created_at">
    >`
      update push_outbox set due_at = ${now + LEASE_MS}, attempts = attempts + 1
      where device_id in (
        select device_id from push_outbox where due_at <= ${now}
        order by due_at limit ${BATCH} for update skip locked)
      returning device_id, group_id, reason, attempts, created_at`.execute(db);
    report.claimed = claimed.rows.length;
    if (claimed.rows.length === 0) return report;

    const ids = claimed.rows.map((r) => r.device_id);
    const targets = await db.selectFrom("push_targets")
      .innerJoin("devices", "devices.id", "push_targets.device_id")
      .selectAll("push_targets").select(["devices.revoked_at", "devices.last_seen_at"])
      .where("push_targets.device_id", "in", ids).execute();
    const byDevice = new Map(targets.map((t) => [t.device_id, t]));
    const online = await this.options.online(ids);
    const inactiveBefore = now - await this.options.inactiveAfterMs();

    const done: string[] = [];
    const gone: string[] = [];
    const sent: string[] = [];
    const retries: { device: string; due: number; error: string }[] = [];
    const counts = new Map<
      PushKind,
      { sent: number; failed: number; gone: number; retried: number }
    >();
    const count = (kind: PushKind, key: "sent" | "failed" | "gone" | "retried") => {
      const c = counts.get(kind) ?? { sent: 0, failed: 0, gone: 0, retried: 0 };
      c[key]++;
      counts.set(kind, c);
      this.options.metrics.pushResults.inc({ provider: kind, result: key });
    };

    const work = claimed.rows.map((row) => async () => {
      const t = byDevice.get(row.device_id);
      const target = t ? targetOf(t) : null;
      // An idle device's lifecycle wake-up goes out although the device is inactive.
      const inactive = t !== undefined && t.last_seen_at <= inactiveBefore;
      if (
        !t || !target || t.revoked_at !== null || online.has(row.device_id) ||
        (inactive && row.reason !== "idle")
      ) {
        done.push(row.device_id);
        report.skipped++;
        return;
      }
      const sender = senders.get(target.kind);
      const outcome: PushOutcome = sender
        ? await sender.send(target, row.group_id ? { group: row.group_id } : {})
        : { result: "failed", detail: `${target.kind} is not configured on this relay` };
      switch (outcome.result) {
        case "sent":
          sent.push(row.device_id);
          report.sent++;
          count(target.kind, "sent");
          return;
        case "gone":
          gone.push(row.device_id);
          report.gone++;
          count(target.kind, "gone");
          this.options.log.info("push target gone; removed", {
            provider: target.kind,
            detail: outcome.detail,
          });
          return;
        case "retry":
          if (row.attempts >= MAX_ATTEMPTS) {
            done.push(row.device_id);
            report.failed++;
            count(target.kind, "failed");
            this.options.log.warn("push wake-up dropped after retries", {
              provider: target.kind,
              attempts: row.attempts,
              detail: outcome.detail,
            });
            return;
          }
          retries.push({
            device: row.device_id,
            due: now + Math.max(backoffMs(row.attempts), outcome.retryAfterMs ?? 0),
            error: outcome.detail,
          });
          report.retried++;
          count(target.kind, "retried");
          return;
        case "failed":
          done.push(row.device_id);
          report.failed++;
          count(target.kind, "failed");
          this.options.log.warn("push wake-up failed", {
            provider: target.kind,
            detail: outcome.detail,
          });
          return;
      }
    });
    await runPool(work, CONCURRENCY);

    const finished = clock.now();
    if (sent.length > 0) {
      await db.updateTable("push_targets").set({ last_push_at: finished })
        .where("device_id", "in", sent).execute();
    }
    const cleared = [...done, ...sent];
    if (cleared.length > 0) {
      // A message noted while the row was in flight (its created_at moved) needs a wake-up of
      // its own: the app may have synced before it committed. Such rows stay, due after the
      // minimum interval; the others are done.
      const noted = new Map(claimed.rows.map((r) => [r.device_id, r.created_at]));
      const ids = cleared;
      const at = cleared.map((d) => noted.get(d)!);
      await sql`
        delete from push_outbox o using unnest(${ids}::text[], ${at}::bigint[]) as u(device, at)
        where o.device_id = u.device and o.created_at = u.at`.execute(db);
      await sql`
        update push_outbox o set attempts = 0, last_error = null,
          due_at = ${finished + this.options.minIntervalMs}
        from unnest(${ids}::text[], ${at}::bigint[]) as u(device, at)
        where o.device_id = u.device and o.created_at <> u.at`.execute(db);
    }
    if (gone.length > 0) {
      await db.deleteFrom("push_targets").where("device_id", "in", gone).execute();
    }
    if (retries.length > 0) {
      await sql`
        update push_outbox o set due_at = u.due, last_error = u.error
        from unnest(${retries.map((r) => r.device)}::text[], ${retries.map((r) => r.due)}::bigint[],
                    ${retries.map((r) => r.error.slice(0, 500))}::text[]) as u(device, due, error)
        where o.device_id = u.device`.execute(db);
    }
    for (const [provider, c] of counts) {
      await sql`
        insert into push_stats (provider, sent, failed, gone, retried, updated_at)
        values (${provider}, ${c.sent}, ${c.failed}, ${c.gone}, ${c.retried}, ${finished})
        on conflict (provider) do update set
          sent = push_stats.sent + excluded.sent, failed = push_stats.failed + excluded.failed,
          gone = push_stats.gone + excluded.gone, retried = push_stats.retried + excluded.retried,
          updated_at = excluded.updated_at`.execute(db);
    }
    if (report.claimed === BATCH) this.#again = true;
    return report;
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

/** Runs `tasks` with at most `limit` in flight. */
async function runPool(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

/**
 * @module
 * One dispatch round of the push outbox, on the cluster's leader, as named steps: **claim** due
 * rows with a lease (a leader that dies mid-send leaves them to its successor), **check** each
 * again (a device that came online, turned inactive or was revoked gets nothing), **send**
 * through the port with bounded concurrency, then **record**: `sent` clears the row and starts
 * the interval; `gone` removes the target (and the row); `retry` reschedules with exponential
 * backoff (or the service's `Retry-After`) until {@link MAX_ATTEMPTS}; `failed` drops the
 * wake-up. Counts go to `push_stats` and metrics.
 */

import { sql } from "kysely";
import type { Clock } from "../base/clock.ts";
import type { Db } from "../store/database.ts";
import type { Logger } from "../base/log.ts";
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

/** What a dispatch round needs. */
export type DispatchOptions = {
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

type Claimed = Pick<
  PushOutboxTable,
  "device_id" | "group_id" | "reason" | "attempts" | "created_at"
>;

type Counts = { sent: number; failed: number; gone: number; retried: number };

/** What the sends of a round came to, written back in {@link record}. */
class Outcomes {
  /** Devices whose row is cleared (skipped, failed, or dropped after retries). */
  readonly done: string[] = [];
  readonly gone: string[] = [];
  readonly sent: string[] = [];
  readonly retries: { device: string; due: number; error: string }[] = [];
  readonly counts = new Map<PushKind, Counts>();

  constructor(readonly report: DispatchReport, private readonly metrics: Metrics) {}

  /** Counts one outcome of `kind` in the report, the per-provider stats and the metrics. */
  count(kind: PushKind, key: keyof Counts): void {
    this.report[key]++;
    const c = this.counts.get(kind) ?? { sent: 0, failed: 0, gone: 0, retried: 0 };
    c[key]++;
    this.counts.set(kind, c);
    this.metrics.pushResults.inc({ provider: kind, result: key });
  }
}

/**
 * Runs one dispatch round: claim, check, send, record. The report's `claimed` equals
 * {@link BATCH} when more rows may be due.
 */
export async function dispatchRound(options: DispatchOptions): Promise<DispatchReport> {
  const report: DispatchReport = {
    claimed: 0,
    sent: 0,
    gone: 0,
    failed: 0,
    retried: 0,
    skipped: 0,
  };
  const now = options.clock.now();
  const claimed = await claim(options.db, now);
  report.claimed = claimed.length;
  if (claimed.length === 0) return report;
  const check = await checker(options, claimed, now);
  const outcomes = new Outcomes(report, options.metrics);
  await runPool(
    claimed.map((row) => () => sendOne(options, row, check(row), outcomes, now)),
    CONCURRENCY,
  );
  await record(options, claimed, outcomes);
  return report;
}

/** True when a round that claimed `claimed` rows should be followed by another at once. */
export function moreDue(report: DispatchReport): boolean {
  return report.claimed === BATCH;
}

/** Claims up to {@link BATCH} due rows with a lease of {@link LEASE_MS}. */
async function claim(db: Db, now: number): Promise<Claimed[]> {
  const claimed = await sql<Claimed>`
    update push_outbox set due_at = ${now + LEASE_MS}, attempts = attempts + 1
    where device_id in (
      select device_id from push_outbox where due_at <= ${now}
      order by due_at limit ${BATCH} for update skip locked)
    returning device_id, group_id, reason, attempts, created_at`.execute(db);
  return claimed.rows;
}

/**
 * Reads the claimed devices' targets and presence once, and returns the check of one row: its
 * target, or null when the wake-up is skipped (no target, revoked, online now, or inactive —
 * an idle device's lifecycle wake-up goes out although the device is inactive).
 */
async function checker(
  options: DispatchOptions,
  claimed: Claimed[],
  now: number,
): Promise<(row: Claimed) => PushTarget | null> {
  const ids = claimed.map((r) => r.device_id);
  const targets = await options.db.selectFrom("push_targets")
    .innerJoin("devices", "devices.id", "push_targets.device_id")
    .selectAll("push_targets").select(["devices.revoked_at", "devices.last_seen_at"])
    .where("push_targets.device_id", "in", ids).execute();
  const byDevice = new Map(targets.map((t) => [t.device_id, t]));
  const online = await options.online(ids);
  const inactiveBefore = now - await options.inactiveAfterMs();
  return (row) => {
    const t = byDevice.get(row.device_id);
    const target = t ? targetOf(t) : null;
    const inactive = t !== undefined && t.last_seen_at <= inactiveBefore;
    if (
      !t || !target || t.revoked_at !== null || online.has(row.device_id) ||
      (inactive && row.reason !== "idle")
    ) return null;
    return target;
  };
}

/** Sends one wake-up through its port and notes the outcome. */
async function sendOne(
  options: DispatchOptions,
  row: Claimed,
  target: PushTarget | null,
  out: Outcomes,
  now: number,
): Promise<void> {
  const { report } = out;
  if (!target) {
    out.done.push(row.device_id);
    report.skipped++;
    return;
  }
  const sender = options.senders.get(target.kind);
  const outcome: PushOutcome = sender
    ? await sender.send(target, row.group_id ? { group: row.group_id } : {})
    : { result: "failed", detail: `${target.kind} is not configured on this relay` };
  const log = { provider: target.kind, detail: outcome.result === "sent" ? "" : outcome.detail };
  switch (outcome.result) {
    case "sent":
      out.sent.push(row.device_id);
      out.count(target.kind, "sent");
      return;
    case "gone":
      out.gone.push(row.device_id);
      out.count(target.kind, "gone");
      options.log.info("push target gone; removed", log);
      return;
    case "retry":
      if (row.attempts >= MAX_ATTEMPTS) {
        out.done.push(row.device_id);
        out.count(target.kind, "failed");
        options.log.warn("push wake-up dropped after retries", { ...log, attempts: row.attempts });
        return;
      }
      out.retries.push({
        device: row.device_id,
        due: now + Math.max(backoffMs(row.attempts), outcome.retryAfterMs ?? 0),
        error: outcome.detail,
      });
      out.count(target.kind, "retried");
      return;
    case "failed":
      out.done.push(row.device_id);
      out.count(target.kind, "failed");
      options.log.warn("push wake-up failed", log);
      return;
  }
}

/** Writes a round's outcomes: targets' last push, cleared rows, gone targets, retries, stats. */
async function record(
  options: DispatchOptions,
  claimed: Claimed[],
  out: Outcomes,
): Promise<void> {
  const { db, clock } = options;
  const { done, sent, gone, retries } = out;
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
    const noted = new Map(claimed.map((r) => [r.device_id, r.created_at]));
    const ids = cleared;
    const at = cleared.map((d) => noted.get(d)!);
    await sql`
      delete from push_outbox o using unnest(${ids}::text[], ${at}::bigint[]) as u(device, at)
      where o.device_id = u.device and o.created_at = u.at`.execute(db);
    await sql`
      update push_outbox o set attempts = 0, last_error = null,
        due_at = ${finished + options.minIntervalMs}
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
  for (const [provider, c] of out.counts) {
    await sql`
      insert into push_stats (provider, sent, failed, gone, retried, updated_at)
      values (${provider}, ${c.sent}, ${c.failed}, ${c.gone}, ${c.retried}, ${finished})
      on conflict (provider) do update set
        sent = push_stats.sent + excluded.sent, failed = push_stats.failed + excluded.failed,
        gone = push_stats.gone + excluded.gone, retried = push_stats.retried + excluded.retried,
        updated_at = excluded.updated_at`.execute(db);
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

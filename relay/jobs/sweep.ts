/**
 * @module
 * The sweeper: every `SEALPOST_SWEEP_INTERVAL` one instance of the cluster expires messages and
 * credentials, purges blobs and cleans up idle devices, then writes one audit-log row with the
 * counts. Runs never overlap: on server Postgres a run holds a session advisory lock on a
 * dedicated connection (another instance, or `sealpost sweep`, finds it taken and skips);
 * embedded PGlite has one process, so an in-process flag suffices. The same run backs
 * `sealpost sweep [--dry-run]`.
 */

import { sql } from "kysely";
import type { BlobPolicy } from "../blobs/policy.ts";
import { cleanup, type CleanupReport, type LifecycleHooks } from "./cleanup.ts";
import type { Deps } from "../deps.ts";
import { recordAudit } from "../store/audit.ts";
import { eraseAuditAddresses, expireCredentials, expireMessages } from "./expire.ts";

/** The advisory lock key of sweeper runs: "sweep" in ASCII. */
const SWEEP_LOCK = 0x7377656570;

/** What one run removed (or, with `dryRun`, would remove), the cleanup pass included. */
export type SweepReport = CleanupReport & {
  dryRun: boolean;
  expiredMessages: number;
  expiredCredentials: number;
  blobsDeleted: number;
  blobBytesDeleted: number;
  /** Of `blobsDeleted`: never referenced within the hour, and of deleted groups. */
  orphanBlobs: number;
  groupBlobs: number;
  /** Audit-log rows whose client address was erased after its retention. */
  auditAddressesErased: number;
  durationMs: number;
};

/** What the sweeper needs. */
export type SweepDeps = Deps & { blobs: BlobPolicy };

/** Runs sweeps on a timer, or once. */
export class Sweeper {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<unknown> | null = null;
  #stopped = false;

  constructor(
    private readonly deps: SweepDeps,
    private readonly options: {
      hooks?: LifecycleHooks;
      /** Whether this instance leads background jobs (checked before each timed run). */
      isLeader?: () => boolean;
      /** Rows per expiry statement. */
      batchSize?: number;
    } = {},
  ) {}

  /** Starts the timer: the first run comes one interval after start. */
  start(): void {
    this.#stopped = false;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(async () => {
      this.#timer = undefined;
      if (this.options.isLeader?.() ?? true) {
        await this.runOnce().catch((error) => this.deps.log.error("sweep failed", { error }));
      }
      this.#schedule();
    }, this.deps.config.sweepInterval);
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => {});
  }

  /**
   * One sweep. Returns null when another sweeper holds the lock.
   *
   * @example
   * ```ts
   * const report = await relay.sweeper.runOnce({ dryRun: true });
   * ```
   */
  async runOnce(options: { dryRun?: boolean } = {}): Promise<SweepReport | null> {
    if (this.#running) {
      this.deps.metrics.sweeps.inc({ result: "skipped" });
      return null;
    }
    const run = this.#locked(() => this.#sweep(options.dryRun ?? false));
    this.#running = run;
    try {
      const report = await run;
      this.deps.metrics.sweeps.inc({ result: report ? "ok" : "skipped" });
      return report;
    } catch (error) {
      this.deps.metrics.sweeps.inc({ result: "error" });
      throw error;
    } finally {
      this.#running = null;
    }
  }

  /** Runs `fn` holding the cluster-wide sweep lock, or returns null when it is taken. */
  async #locked<T>(fn: () => Promise<T>): Promise<T | null> {
    const { db, dbKind } = this.deps;
    if (dbKind === "pglite") return await fn();
    // A session lock lives on one connection: pin one for the run; the work uses the pool.
    return await db.connection().execute(async (conn) => {
      const got = await sql<{ ok: boolean }>`select pg_try_advisory_lock(${SWEEP_LOCK}) as ok`
        .execute(conn);
      if (!got.rows[0]?.ok) return null;
      try {
        return await fn();
      } finally {
        await sql`select pg_advisory_unlock(${SWEEP_LOCK})`.execute(conn);
      }
    });
  }

  async #sweep(dryRun: boolean): Promise<SweepReport> {
    const { deps } = this;
    const started = performance.now();
    // Lifecycle decisions must see all activity this instance noted.
    await deps.activity.flush();
    const now = deps.clock.now();
    const expiredMessages = await expireMessages(deps, now, {
      dryRun,
      batchSize: this.options.batchSize,
    });
    const expiredCredentials = await expireCredentials(deps, now, dryRun);
    const blobs = await deps.blobs.purge(now, { dryRun });
    const life = await cleanup(deps, now, { dryRun, hooks: this.options.hooks });
    const auditAddressesErased = await eraseAuditAddresses(deps, now, dryRun);
    const report: SweepReport = {
      dryRun,
      expiredMessages,
      expiredCredentials,
      blobsDeleted: blobs.blobs,
      blobBytesDeleted: blobs.bytes,
      orphanBlobs: blobs.orphan,
      groupBlobs: blobs.group_deleted,
      ...life,
      auditAddressesErased,
      durationMs: Math.round(performance.now() - started),
    };
    if (dryRun) return report;

    deps.metrics.devicesDeleted.inc(life.devicesDeleted);
    deps.metrics.accountsDeleted.inc(life.accountsDeleted);
    deps.metrics.sweepSeconds.observe(report.durationMs / 1000);
    const usage = await deps.blobs.usage();
    deps.metrics.blobBytesStored.set(usage.bytes);
    deps.metrics.blobsStored.set(usage.blobs);
    await this.#deviceGauges(now);
    const { dryRun: _, durationMs: __, ...counts } = report;
    await recordAudit(deps, "sweeper", "sweep", { ...counts, duration_ms: report.durationMs }, now);
    const removed = report.expiredMessages + report.blobsDeleted + report.devicesDeleted;
    deps.log[removed > 0 ? "info" : "debug"]("sweep", { ...counts, ms: report.durationMs });
    return report;
  }

  async #deviceGauges(now: number): Promise<void> {
    const { db, metrics, settings } = this.deps;
    const inactiveBefore = now - (await settings.get()).inactive_after_s * 1000;
    const row = await db.selectFrom("devices").select([
      sql<number>`count(*) filter (where revoked_at is not null)::int`.as("revoked"),
      sql<
        number
      >`count(*) filter (where revoked_at is null and last_seen_at <= ${inactiveBefore})::int`
        .as("inactive"),
      sql<
        number
      >`count(*) filter (where revoked_at is null and last_seen_at > ${inactiveBefore})::int`
        .as("active"),
    ]).executeTakeFirstOrThrow();
    for (const status of ["active", "inactive", "revoked"] as const) {
      metrics.devicesByStatus.set({ status }, row[status]);
    }
  }
}

/** One line per count for `sealpost sweep`: what was (or would be) removed. */
export function describeSweep(report: SweepReport): string[] {
  const verb = report.dryRun ? "would remove" : "removed";
  const mib = (report.blobBytesDeleted / 1024 / 1024).toFixed(1);
  return [
    `${verb} ${report.expiredMessages} expired messages`,
    `${verb} ${report.blobsDeleted} blobs (${mib} MiB; ${report.orphanBlobs} never referenced, ${report.groupBlobs} of deleted groups)`,
    `${verb} ${report.devicesDeleted} idle devices and ${report.accountsDeleted} accounts left without devices${
      report.dryRun
        ? ""
        : ` (${report.membershipsRemoved} memberships, ${report.groupsDeleted} groups)`
    }`,
    `${verb} ${report.expiredCredentials} expired nonces, tokens and tombstones`,
    `${report.devicesInactive} devices are inactive`,
  ];
}

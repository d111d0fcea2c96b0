/**
 * @module
 * Message expiry. Expired messages are never served (every read filters on `expires_at`); this
 * sweeper removes them from storage in bounded batches that walk the `messages_expires_idx`
 * index, each its own short statement, yielding between batches so sends and reads go on. No
 * table-wide scan, no long lock. The blobs they referenced expire with them (see
 * `blobs/policy.ts`); expired nonces, tokens and token tombstones go here too.
 */

import { sql } from "kysely";
import { purgeExpiredCredentials } from "../authenticate.ts";
import type { Deps } from "../deps.ts";

/** Rows deleted per statement: large enough to be cheap per row, small enough to stay short. */
export const EXPIRE_BATCH = { postgres: 5000, pglite: 1000 } as const;

/** Options of one expiry pass. */
export type ExpireOptions = {
  /** Rows per statement (default by database kind). */
  batchSize?: number;
  /** Only count what would be deleted. */
  dryRun?: boolean;
  /** Called after each batch with the rows it deleted (tests, progress). */
  onBatch?: (deleted: number) => void;
};

/**
 * Yields so requests waiting behind a batch get their turn. On PGlite (one connection, queries
 * block the event loop) a zero-delay yield lets the next batch win the connection again before a
 * send's group commit (whose window is a millisecond or more) asks for it, so it waits longer.
 */
function yieldToOthers(dbKind: string): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, dbKind === "pglite" ? 5 : 0));
}

/**
 * Deletes every message that expired at or before `now`, oldest expiry first, in batches.
 * Returns how many it deleted (or, with `dryRun`, would delete).
 *
 * @example
 * ```ts
 * const removed = await expireMessages(deps, deps.clock.now());
 * ```
 */
export async function expireMessages(
  deps: Deps,
  now: number,
  options: ExpireOptions = {},
): Promise<number> {
  const { db } = deps;
  if (options.dryRun) {
    const row = await db.selectFrom("messages").select(sql<number>`count(*)::bigint`.as("n"))
      .where("expires_at", "<=", now).executeTakeFirstOrThrow();
    return Number(row.n);
  }
  const batch = options.batchSize ?? EXPIRE_BATCH[deps.dbKind];
  let total = 0;
  for (;;) {
    // Keys first (an index range scan of messages_expires_idx), then a delete by primary key.
    const result = await sql`
      delete from messages m
      using (
        select group_id, seq from messages
        where expires_at <= ${now}
        order by expires_at
        limit ${batch}
      ) due
      where m.group_id = due.group_id and m.seq = due.seq`.execute(db);
    const deleted = Number(result.numAffectedRows ?? 0);
    total += deleted;
    deps.metrics.messagesExpired.inc(deleted);
    options.onBatch?.(deleted);
    if (deleted < batch) break;
    await yieldToOthers(deps.dbKind);
  }
  return total;
}

/** Deletes expired nonces, tokens and tombstones; with `dryRun` counts them. */
export async function expireCredentials(
  deps: Deps,
  now: number,
  dryRun = false,
): Promise<number> {
  if (!dryRun) {
    const n = await purgeExpiredCredentials(deps);
    deps.metrics.credentialsPurged.inc(n);
    return n;
  }
  const row = await sql<{ n: number }>`
    select (select count(*) from auth_nonces where expires_at <= ${now})
         + (select count(*) from tokens where expires_at <= ${now})
         + (select count(*) from token_tombstones where expires_at <= ${now}) as n`.execute(
    deps.db,
  );
  return Number(row.rows[0].n);
}

/** Rows the sweeper rewrites per run when erasing audit-log addresses. */
const AUDIT_ERASE_BATCH = 1000;

/**
 * Erases client addresses from audit-log rows older than `SEALPOST_AUDIT_ADDRESS_RETENTION`
 * (issue 16): the `@address` suffix of an admin actor (`admin:1a2b3c4d@203.0.113.7` →
 * `admin:1a2b3c4d`) and an `ip` field of the detail. The action, time and session stay. At most
 * {@link AUDIT_ERASE_BATCH} rows a run; the next run takes the rest. Returns the rows changed.
 */
export async function eraseAuditAddresses(
  deps: Deps,
  now: number,
  dryRun = false,
): Promise<number> {
  const before = now - deps.config.auditAddressRetention;
  const rows = await deps.db.selectFrom("audit_log").select(["id", "actor", "detail"])
    .where("at", "<", before)
    .where((eb) => eb.or([eb("actor", "like", "%@%"), eb("detail", "like", '%"ip":%')]))
    .orderBy("id").limit(AUDIT_ERASE_BATCH).execute();
  if (dryRun) return rows.length;
  for (const row of rows) {
    let detail = row.detail;
    try {
      const parsed = JSON.parse(row.detail);
      if (parsed && typeof parsed === "object" && "ip" in parsed) {
        delete parsed.ip;
        detail = JSON.stringify(parsed);
      }
    } catch { /* not JSON: nothing to erase in it */ }
    await deps.db.updateTable("audit_log")
      .set({ actor: row.actor.replace(/@.*$/, ""), detail })
      .where("id", "=", row.id).execute();
  }
  return rows.length;
}

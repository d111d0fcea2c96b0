/**
 * @module
 * The one audit writer: every change an operator (or the sweeper) makes is one `audit_log` row
 * of who, what and the before/after detail as JSON. Callers inside a transaction pass the
 * transaction as `db`, so the row commits with the change it records.
 */

import type { Clock } from "../base/clock.ts";
import type { Db } from "./database.ts";

/** Where an audit row is written: a database (or an open transaction) and the clock. */
export type AuditTarget = { readonly db: Db; readonly clock: Clock };

/**
 * Records one action in the audit log; `at` defaults to the clock's now.
 *
 * @example
 * ```ts
 * await recordAudit(deps, "admin:3f2a@10.0.0.1", "invite.revoke", { code: "…" });
 * await deps.db.transaction().execute((tx) =>
 *   recordAudit({ db: tx, clock: deps.clock }, actor, "group.retention", { before, after })
 * );
 * ```
 */
export async function recordAudit(
  target: AuditTarget,
  actor: string,
  action: string,
  detail: Record<string, unknown>,
  at: number = target.clock.now(),
): Promise<void> {
  await target.db.insertInto("audit_log").values({
    at,
    actor,
    action,
    detail: JSON.stringify(detail),
  }).execute();
}

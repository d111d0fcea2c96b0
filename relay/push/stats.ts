/**
 * @module
 * Push numbers for the admin overview, cluster-wide from the database: wake-ups waiting in the
 * outbox (and how many of them are retries), targets per provider, and sent/failed/gone counts
 * per provider since the database was created.
 */

import { sql } from "kysely";
import type { Deps } from "../deps.ts";
import { PUSH_KINDS, type PushKind } from "./mod.ts";

/** One provider's line of the overview. */
export type PushProviderStats = {
  provider: PushKind;
  targets: number;
  sent: number;
  failed: number;
  gone: number;
  retried: number;
};

/** What the overview shows about push. */
export type PushOverview = {
  /** Wake-ups waiting to be sent. */
  queued: number;
  /** Of `queued`: waiting for a retry after a failed attempt. */
  retrying: number;
  providers: PushProviderStats[];
};

/**
 * Reads the push numbers.
 *
 * @example
 * ```ts
 * const { queued, providers } = await pushOverview(deps);
 * ```
 */
export async function pushOverview(deps: Deps): Promise<PushOverview> {
  const { db } = deps;
  const [queue, targets, stats] = await Promise.all([
    db.selectFrom("push_outbox").select([
      sql<number>`count(*)::int`.as("queued"),
      sql<number>`count(*) filter (where attempts > 0)::int`.as("retrying"),
    ]).executeTakeFirstOrThrow(),
    db.selectFrom("push_targets").select(["kind", sql<number>`count(*)::int`.as("n")])
      .groupBy("kind").execute(),
    db.selectFrom("push_stats").select(["provider", "sent", "failed", "gone", "retried"])
      .execute(),
  ]);
  const providers = PUSH_KINDS.map((provider) => {
    const row = stats.find((s) => s.provider === provider);
    return {
      provider,
      targets: targets.find((t) => t.kind === provider)?.n ?? 0,
      sent: Number(row?.sent ?? 0),
      failed: Number(row?.failed ?? 0),
      gone: Number(row?.gone ?? 0),
      retried: Number(row?.retried ?? 0),
    };
  });
  return { queued: queue.queued, retrying: queue.retrying, providers };
}

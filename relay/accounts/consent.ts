/**
 * @module
 * Consent before exposure (issue 16): the rules that keep an account's metadata from a group it
 * has not accepted. A membership is `invited` until one of the account's devices accepts (the
 * accept call or frame, or its first send in the group). While invited, the group sees the
 * account id and what encryption needs (device ids, certificates, key packages) but not device
 * names, platforms, `last_seen_at` or presence. Only accepted memberships count toward
 * `max_groups_per_account`; invitations waiting per account are capped
 * (`SEALPOST_MAX_PENDING_INVITATIONS`). None of these checks asks whether an account exists, so
 * inviting an unknown account answers exactly as inviting a known one.
 */

import { sql } from "kysely";
import type { Deps } from "../deps.ts";
import { groupQuotaReached, RelayError } from "../errors.ts";

/** How much of `account` a viewer may see: everything, what encryption needs, or nothing. */
export type Exposure = "full" | "encryption" | "none";

/**
 * What `viewer` may see of `account`'s devices: `full` for its own account or when they share
 * a group in which `account` has accepted; `encryption` (ids, certificates, status) when they
 * share groups only as an invitation of `account`; `none` otherwise.
 */
export async function exposureOf(deps: Deps, viewer: string, account: string): Promise<Exposure> {
  if (viewer === account) return "full";
  const shared = await sql<{ state: string }>`
    select b.state from group_members a
    join group_members b on b.group_id = a.group_id
    where a.account_id = ${viewer} and b.account_id = ${account}
    order by b.state limit 1`.execute(deps.db);
  // 'accepted' sorts before 'invited'
  const state = shared.rows[0]?.state;
  return state === "accepted" ? "full" : state === "invited" ? "encryption" : "none";
}

/** Throws `409 conflict` when `account` is already in `max_groups_per_account` accepted groups. */
export async function assertGroupQuota(deps: Deps, account: string): Promise<void> {
  const row = await deps.db.selectFrom("group_members").select(sql<number>`count(*)::int`.as("n"))
    .where("account_id", "=", account).where("state", "=", "accepted").executeTakeFirstOrThrow();
  if (row.n >= deps.config.maxGroupsPerAccount) {
    throw groupQuotaReached(deps.config.maxGroupsPerAccount);
  }
}

/**
 * Throws `409 conflict` when one of `accounts` already has `max_pending_invitations`
 * invitations waiting. Known and unknown accounts are counted alike (an unknown account's
 * invitations are stored too), so the answer says nothing about whether an account exists.
 */
export async function assertCanBeInvited(deps: Deps, accounts: string[]): Promise<void> {
  if (accounts.length === 0) return;
  const cap = deps.config.maxPendingInvitations;
  const full = await deps.db.selectFrom("group_members").select("account_id")
    .where("account_id", "in", accounts).where("state", "=", "invited")
    .groupBy("account_id").having(sql<number>`count(*)`, ">=", cap)
    .limit(1).executeTakeFirst();
  if (full) {
    throw new RelayError(
      "conflict",
      `Account ${full.account_id} has ${cap} invitations waiting; it must accept or decline some first`,
    );
  }
}

/**
 * Of `accounts`, the ones whose membership of `group` is accepted (the ones whose presence the
 * group may see).
 */
export async function acceptedIn(
  deps: Deps,
  group: string,
  accounts?: string[],
): Promise<string[]> {
  let query = deps.db.selectFrom("group_members").select("account_id")
    .where("group_id", "=", group).where("state", "=", "accepted");
  if (accounts) {
    if (accounts.length === 0) return [];
    query = query.where("account_id", "in", accounts);
  }
  return (await query.execute()).map((r) => r.account_id);
}

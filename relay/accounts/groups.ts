/**
 * @module
 * Groups and membership (PROTOCOL.md "Groups"): create, list, read, add or change a member,
 * remove a member, delete. A caller who is not a member gets `404` for every group call, the
 * same as for a group that does not exist. Every membership change is published on the bus so
 * connected devices hear of it and `sub` with `groups: null` follows new groups.
 *
 * Roles: an owner may do anything; an admin may add and remove members and admins and change
 * their roles, but may not touch an owner or make one; a member may only leave.
 *
 * An added account is `invited` until it accepts (`consent.ts`): adding never asks whether the
 * account exists (an unknown account is invited like a known one), only accepted memberships
 * count toward `max_groups_per_account`, and pending invitations per account are capped.
 */

import { sql } from "kysely";
import type { MembershipEvent } from "../protocol.ts";
import type { Deps } from "../deps.ts";
import { fromBase64Url, randomId } from "../base/encoding.ts";
import { invalid, notFound, RelayError } from "../errors.ts";
import type { Principal } from "../authenticate.ts";
import { assertCanBeInvited, assertGroupQuota } from "./consent.ts";
import { recordAudit } from "../store/audit.ts";

/** A member as the wire shows it. */
export type Member = { account: string; role: Role; added_at: number; state: MemberState };
/** Whether a member has accepted its membership (issue 16: consent before exposure). */
export type MemberState = "invited" | "accepted";
/** Member roles. */
export type Role = "owner" | "admin" | "member";
/** The group object of PROTOCOL.md. */
export type GroupObject = {
  id: string;
  members: Member[];
  retention_s: number;
  last_seq: number;
  created_at: number;
};

/** Options for a new group. */
export type CreateGroup = { id?: string; members?: string[]; retention_s?: number };

/** Caps a requested retention by the server's max TTL; 0 means "keep until deleted". */
export function capRetention(requested: number, maxTtlMs: number | null): number {
  const maxS = maxTtlMs === null ? null : Math.floor(maxTtlMs / 1000);
  if (requested === 0) return maxS === null ? 0 : maxS;
  return maxS === null ? requested : Math.min(requested, maxS);
}

/** The group object of `id`, or null when there is no such group. */
export async function groupObject(deps: Deps, id: string): Promise<GroupObject | null> {
  const group = await deps.db.selectFrom("groups").selectAll().where("id", "=", id)
    .executeTakeFirst();
  if (!group) return null;
  const members = await deps.db.selectFrom("group_members")
    .select(["account_id", "role", "added_at", "state"]).where("group_id", "=", id)
    .orderBy("added_at").orderBy("account_id").execute();
  return {
    id: group.id,
    members: members.map(toMember),
    retention_s: group.retention_s,
    last_seq: group.last_seq,
    created_at: group.created_at,
  };
}

function toMember(
  m: { account_id: string; role: Role; added_at: number; state: MemberState },
): Member {
  return { account: m.account_id, role: m.role, added_at: m.added_at, state: m.state };
}

/** The caller's role in a group, or throws `404` when it is not a member (or no such group). */
export async function roleIn(deps: Deps, group: string, account: string): Promise<Role> {
  const row = await deps.db.selectFrom("group_members").select("role")
    .where("group_id", "=", group).where("account_id", "=", account).executeTakeFirst();
  if (!row) throw notFound("No such group");
  return row.role;
}

/** Accounts that are members of `group`. */
export async function memberAccounts(deps: Deps, group: string): Promise<string[]> {
  const rows = await deps.db.selectFrom("group_members").select("account_id")
    .where("group_id", "=", group).execute();
  return rows.map((r) => r.account_id);
}

/** True when `account` is a member of `group`. */
export async function isMember(deps: Deps, group: string, account: string): Promise<boolean> {
  const row = await deps.db.selectFrom("group_members").select("group_id")
    .where("group_id", "=", group).where("account_id", "=", account).executeTakeFirst();
  return row !== undefined;
}

/** Groups by account; `invited` holds the `"<account> <group>"` memberships not accepted yet. */
export type Memberships = Map<string, string[]> & { invited?: Set<string> };

/** The groups of each of `accounts` (accounts in no group are absent). */
export async function membershipsOf(deps: Deps, accounts: string[]): Promise<Memberships> {
  const memberships: Memberships = new Map<string, string[]>();
  memberships.invited = new Set();
  if (accounts.length === 0) return memberships;
  const rows = await deps.db.selectFrom("group_members")
    .select(["account_id", "group_id", "state"]).where("account_id", "in", accounts).execute();
  for (const row of rows) {
    const list = memberships.get(row.account_id) ?? [];
    list.push(row.group_id);
    memberships.set(row.account_id, list);
    if (row.state === "invited") memberships.invited.add(`${row.account_id} ${row.group_id}`);
  }
  return memberships;
}

/** Ids of the groups `account` belongs to. */
export async function groupsOf(deps: Deps, account: string): Promise<string[]> {
  const rows = await deps.db.selectFrom("group_members").select("group_id")
    .where("account_id", "=", account).execute();
  return rows.map((r) => r.group_id);
}

/** The groups `account` belongs to, and of those the ones it is only invited to. */
export async function membershipOf(
  deps: Deps,
  account: string,
): Promise<{ groups: string[]; invited: string[] }> {
  const rows = await deps.db.selectFrom("group_members").select(["group_id", "state"])
    .where("account_id", "=", account).execute();
  return {
    groups: rows.map((r) => r.group_id),
    invited: rows.filter((r) => r.state === "invited").map((r) => r.group_id),
  };
}

/** Publishes a membership change on the bus. */
export function announce(
  deps: Deps,
  group: string,
  event: MembershipEvent,
  account: string,
  notify: string[],
  invited = false,
): void {
  deps.bus.publish({
    kind: "membership",
    group,
    event,
    account,
    notify: [...new Set(notify)],
    ...(invited ? { invited } : {}),
  });
}

/** Creates a group owned by the caller's account. */
export async function createGroup(
  deps: Deps,
  caller: Principal,
  body: CreateGroup,
): Promise<GroupObject> {
  const { config, db, clock } = deps;
  const id = body.id ?? randomId(16);
  if (body.id !== undefined && fromBase64Url(body.id)?.length !== 16) {
    throw invalid("id: must be 16 bytes in base64url (22 chars)");
  }
  const others = [...new Set(body.members ?? [])].filter((a) => a !== caller.account);
  if (others.length + 1 > config.maxGroupMembers) {
    throw invalid(`members: a group holds at most ${config.maxGroupMembers} members`);
  }
  const settings = await deps.settings.get();
  const retention = capRetention(body.retention_s ?? settings.retention_s, config.maxTtl);
  const now = clock.now();

  await assertGroupQuota(deps, caller.account);
  // Never ask whether the others exist: an unknown account is invited like a known one.
  await assertCanBeInvited(deps, others);

  try {
    await db.transaction().execute(async (tx) => {
      await tx.insertInto("groups").values({
        id,
        last_seq: 0,
        retention_s: retention,
        created_at: now,
      })
        .execute();
      await tx.insertInto("group_members").values([
        {
          group_id: id,
          account_id: caller.account,
          role: "owner",
          added_at: now,
          state: "accepted",
        },
        ...others.map((account) => ({
          group_id: id,
          account_id: account,
          role: "member" as const,
          added_at: now,
          state: "invited" as const,
        })),
      ]).execute();
    });
  } catch (error) {
    if ((error as { code?: string })?.code === "23505") {
      throw new RelayError("conflict", "A group with this id exists");
    }
    throw error;
  }
  const all = [caller.account, ...others];
  for (const account of all) {
    announce(deps, id, "member_added", account, all, account !== caller.account);
  }
  return (await groupObject(deps, id))!;
}

/** The caller's groups, each with the calling device's cursor. */
export async function listGroups(
  deps: Deps,
  caller: Principal,
  pendingCursor: (group: string) => number | undefined,
): Promise<(GroupObject & { cursor: number })[]> {
  const ids = await groupsOf(deps, caller.account);
  if (ids.length === 0) return [];
  const [groups, members, cursors] = await Promise.all([
    deps.db.selectFrom("groups").selectAll().where("id", "in", ids).orderBy("created_at").orderBy(
      "id",
    )
      .execute(),
    deps.db.selectFrom("group_members")
      .select(["group_id", "account_id", "role", "added_at", "state"])
      .where("group_id", "in", ids).orderBy("added_at").orderBy("account_id").execute(),
    deps.db.selectFrom("cursors").select(["group_id", "seq"]).where("device_id", "=", caller.device)
      .execute(),
  ]);
  const cursorOf = new Map(cursors.map((c) => [c.group_id, c.seq]));
  return groups.map((g) => ({
    id: g.id,
    members: members.filter((m) => m.group_id === g.id).map(toMember),
    retention_s: g.retention_s,
    last_seq: g.last_seq,
    created_at: g.created_at,
    cursor: Math.max(cursorOf.get(g.id) ?? 0, pendingCursor(g.id) ?? 0),
  }));
}

/** One group, for a member. */
export async function getGroup(deps: Deps, caller: Principal, id: string): Promise<GroupObject> {
  await roleIn(deps, id, caller.account);
  const group = await groupObject(deps, id);
  if (!group) throw notFound("No such group");
  return group;
}

/** Adds a member or changes a member's role. */
export async function putMember(
  deps: Deps,
  caller: Principal,
  id: string,
  account: string,
  role: Role = "member",
): Promise<GroupObject> {
  const { db, clock, config } = deps;
  const callerRole = await roleIn(deps, id, caller.account);
  if (callerRole === "member") {
    throw new RelayError("forbidden", "Only an owner or admin may change members");
  }
  if (role === "owner" && callerRole !== "owner") {
    throw new RelayError("forbidden", "Only an owner may make an owner");
  }
  const existing = await db.selectFrom("group_members").select("role")
    .where("group_id", "=", id).where("account_id", "=", account).executeTakeFirst();
  if (existing?.role === "owner" && callerRole !== "owner") {
    throw new RelayError("forbidden", "Only an owner may change an owner");
  }
  if (existing) {
    if (existing.role !== role) {
      if (existing.role === "owner" && await ownerCount(deps, id) <= 1) {
        throw new RelayError("conflict", "A group needs an owner: make another owner first");
      }
      await db.updateTable("group_members").set({ role })
        .where("group_id", "=", id).where("account_id", "=", account).execute();
      announce(deps, id, "role_changed", account, await memberAccounts(deps, id));
    }
    return (await groupObject(deps, id))!;
  }
  const members = await memberAccounts(deps, id);
  if (members.length >= config.maxGroupMembers) {
    throw new RelayError("conflict", `A group holds at most ${config.maxGroupMembers} members`);
  }
  // The same checks and answers whether or not the account exists (no existence oracle); its
  // group quota is checked when it accepts.
  await assertCanBeInvited(deps, [account]);
  await db.insertInto("group_members")
    .values({ group_id: id, account_id: account, role, added_at: clock.now(), state: "invited" })
    .onConflict((oc) => oc.columns(["group_id", "account_id"]).doNothing())
    .execute();
  announce(deps, id, "member_added", account, [...members, account], true);
  return (await groupObject(deps, id))!;
}

/**
 * Accepts the caller's membership of a group (`POST /v1/groups/:id/accept`, the `accept` frame):
 * idempotent, answering the group object also when the account already takes part; `404` for a
 * non-member; `409 conflict` when accepting would pass `max_groups_per_account`.
 */
export async function acceptGroup(
  deps: Deps,
  caller: Principal,
  id: string,
): Promise<GroupObject> {
  await acceptMembership(deps, id, caller.account);
  const group = await groupObject(deps, id);
  if (!group) throw notFound("No such group");
  return group;
}

/**
 * Marks `account`'s membership of `group` accepted when it is invited, announcing
 * `member_accepted`; true when it changed. Throws `404` when the account is not a member.
 */
export async function acceptMembership(
  deps: Deps,
  group: string,
  account: string,
): Promise<boolean> {
  const row = await deps.db.selectFrom("group_members").select("state")
    .where("group_id", "=", group).where("account_id", "=", account).executeTakeFirst();
  if (!row) throw notFound("No such group");
  if (row.state === "accepted") return false;
  await assertGroupQuota(deps, account);
  const updated = await deps.db.updateTable("group_members").set({ state: "accepted" })
    .where("group_id", "=", group).where("account_id", "=", account)
    .where("state", "=", "invited").returning("account_id").execute();
  if (updated.length === 0) return false;
  await announceAccepted(deps, group, account);
  return true;
}

/** Tells the group that `account` accepted (also after a send that accepted in its commit). */
export async function announceAccepted(deps: Deps, group: string, account: string): Promise<void> {
  announce(deps, group, "member_accepted", account, await memberAccounts(deps, group));
}

async function ownerCount(deps: Deps, id: string): Promise<number> {
  const row = await deps.db.selectFrom("group_members").select(sql<number>`count(*)::int`.as("n"))
    .where("group_id", "=", id).where("role", "=", "owner").executeTakeFirstOrThrow();
  return row.n;
}

/** Removes a member (owner/admin, or the account itself). The last member leaving deletes the group. */
export async function removeMember(
  deps: Deps,
  caller: Principal,
  id: string,
  account: string,
): Promise<void> {
  const callerRole = await roleIn(deps, id, caller.account);
  const self = account === caller.account;
  if (!self && callerRole === "member") {
    throw new RelayError("forbidden", "Only an owner or admin may remove others");
  }
  const target = await deps.db.selectFrom("group_members").select("role")
    .where("group_id", "=", id).where("account_id", "=", account).executeTakeFirst();
  if (!target) throw notFound("No such member");
  if (!self && target.role === "owner" && callerRole !== "owner") {
    throw new RelayError("forbidden", "Only an owner may remove an owner");
  }
  const members = await memberAccounts(deps, id);
  if (members.length === 1) {
    await purgeGroup(deps, id, account, members);
    return;
  }
  if (target.role === "owner" && await ownerCount(deps, id) <= 1) {
    throw new RelayError("conflict", "The last owner cannot leave: make another owner first");
  }
  await deps.db.deleteFrom("group_members").where("group_id", "=", id)
    .where("account_id", "=", account).execute();
  // A removed member may hold the send capability: sealed sends wait for a new one.
  await deps.db.updateTable("groups").set({ send_verifier: null }).where("id", "=", id).execute();
  announce(deps, id, "member_removed", account, members);
}

/** Deletes a group (owner only), purging its messages. */
export async function deleteGroup(deps: Deps, caller: Principal, id: string): Promise<void> {
  const role = await roleIn(deps, id, caller.account);
  if (role !== "owner") throw new RelayError("forbidden", "Only an owner may delete a group");
  await purgeGroup(deps, id, caller.account, await memberAccounts(deps, id));
}

async function purgeGroup(deps: Deps, id: string, by: string, members: string[]): Promise<void> {
  // Messages and cursors go with the group (ON DELETE CASCADE); blobs are purged by the sweeper.
  await deps.db.deleteFrom("groups").where("id", "=", id).execute();
  announce(deps, id, "deleted", by, members);
}

/**
 * Changes a group's retention as an admin (capped by the server's max TTL), recording it in the
 * audit log. New messages get the new retention; stored ones keep their expiry. Returns the
 * stored value, or null when there is no such group.
 */
export async function adminSetRetention(
  deps: Deps,
  id: string,
  retentionS: number,
  actor: string,
): Promise<number | null> {
  const retention = capRetention(retentionS, deps.config.maxTtl);
  const group = await deps.db.selectFrom("groups").select("retention_s").where("id", "=", id)
    .executeTakeFirst();
  if (!group) return null;
  if (group.retention_s === retention) return retention;
  await deps.db.transaction().execute(async (tx) => {
    await tx.updateTable("groups").set({ retention_s: retention }).where("id", "=", id).execute();
    await recordAudit({ db: tx, clock: deps.clock }, actor, "group.retention", {
      group: id,
      before: group.retention_s,
      after: retention,
    });
  });
  return retention;
}

/** Deletes a group as an admin, with its messages, telling its members; false if none. */
export async function adminDeleteGroup(deps: Deps, id: string, actor: string): Promise<boolean> {
  const group = await deps.db.selectFrom("groups").select(["last_seq"]).where("id", "=", id)
    .executeTakeFirst();
  if (!group) return false;
  const members = await memberAccounts(deps, id);
  await recordAudit(deps, actor, "group.delete", {
    group: id,
    members: members.length,
    last_seq: group.last_seq,
  });
  await purgeGroup(deps, id, members[0] ?? "", members);
  return true;
}

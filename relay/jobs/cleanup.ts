/**
 * @module
 * Device lifecycle (PROTOCOL.md "Device directory"). A device with no activity for
 * `inactive_after` is `inactive` (its status is computed on read, nothing is written); after
 * `delete_after` cleanup deletes it with its cursors and push target, and moves its token hashes
 * to `token_tombstones` so a stale token answers `401 unknown_device`, like its login. An
 * account left with no device is removed with its memberships: its groups hear `member_removed`
 * (or `deleted`, for a group it was the last member of). Revoked devices are kept for audit.
 *
 * Activity is kept in memory and flushed in batches, so the caller flushes it before deciding,
 * and a device seen since the flush is spared.
 */

import { sql } from "kysely";
import type { BusEvent } from "../bus/bus.ts";
import type { Db } from "../store/database.ts";
import type { Deps } from "../deps.ts";
import { removeRevokedKeyPackages } from "../accounts/key_packages.ts";

/** A device cleanup deletes. */
export type DeviceRef = { id: string; account: string };

/** Hooks into cleanup for the parts that land later. */
export type LifecycleHooks = {
  /**
   * Called with each batch of devices just before they are deleted (their push targets go with
   * them; the wake-up that could have saved them comes earlier, from `onPass`).
   */
  onBeforeDelete?(devices: DeviceRef[]): Promise<void>;
  /**
   * Called at the start of each pass (not dry runs) with its time and thresholds. Push hooks in
   * here to queue a wake-up for idle devices close to deletion that have a push target, so an
   * installed but idle app checks in and is kept.
   */
  onPass?(pass: { now: number; inactiveAfterMs: number; deleteAfterMs: number }): Promise<void>;
};

/** What one cleanup pass found and did (or, dry, would do). */
export type CleanupReport = {
  /** Devices inactive now (not revoked, idle past `inactive_after`, deletion candidates too). */
  devicesInactive: number;
  devicesDeleted: number;
  accountsDeleted: number;
  membershipsRemoved: number;
  groupsDeleted: number;
};

const DEVICE_BATCH = 500;

/**
 * Runs one cleanup pass at `now`.
 *
 * @example
 * ```ts
 * await deps.activity.flush();
 * const report = await cleanup(deps, deps.clock.now());
 * ```
 */
export async function cleanup(
  deps: Deps,
  now: number,
  options: { dryRun?: boolean; hooks?: LifecycleHooks } = {},
): Promise<CleanupReport> {
  const { db } = deps;
  const settings = await deps.settings.get();
  const inactiveBefore = now - settings.inactive_after_s * 1000;
  const deleteBefore = now - settings.delete_after_s * 1000;
  const report: CleanupReport = {
    devicesInactive: 0,
    devicesDeleted: 0,
    accountsDeleted: 0,
    membershipsRemoved: 0,
    groupsDeleted: 0,
  };
  const inactive = await db.selectFrom("devices").select(sql<number>`count(*)::int`.as("n"))
    .where("revoked_at", "is", null).where("last_seen_at", "<=", inactiveBefore)
    .executeTakeFirstOrThrow();
  report.devicesInactive = inactive.n;

  if (options.dryRun) {
    const due = await db.selectFrom("devices").select(sql<number>`count(*)::int`.as("n"))
      .where("revoked_at", "is", null).where("last_seen_at", "<=", deleteBefore)
      .executeTakeFirstOrThrow();
    report.devicesDeleted = due.n;
    // Accounts all of whose devices are due (none revoked, none recently seen).
    const accounts = await sql<{ n: number }>`
      select count(*)::int as n from accounts a
      where exists (select 1 from devices d where d.account_id = a.id)
        and not exists (select 1 from devices d where d.account_id = a.id
          and (d.revoked_at is not null or d.last_seen_at > ${deleteBefore}))`.execute(db);
    report.accountsDeleted = accounts.rows[0].n;
    return report;
  }

  // Packages an upload left behind while racing its device's revocation (never handed out).
  await removeRevokedKeyPackages(db);
  await options.hooks?.onPass?.({
    now,
    inactiveAfterMs: settings.inactive_after_s * 1000,
    deleteAfterMs: settings.delete_after_s * 1000,
  });
  let after = "";
  for (;;) {
    const due = await db.selectFrom("devices").select(["id", "account_id"])
      .where("revoked_at", "is", null).where("last_seen_at", "<=", deleteBefore)
      .where("id", ">", after).orderBy("id").limit(DEVICE_BATCH).execute();
    if (due.length === 0) break;
    after = due[due.length - 1].id;
    // Seen on this instance since the last flush: not idle after all.
    const idle = due.filter((d) => (deps.activity.pending(d.id) ?? 0) <= deleteBefore)
      .map((d) => ({ id: d.id, account: d.account_id }));
    if (idle.length > 0) await deleteDevices(deps, idle, now, deleteBefore, report, options.hooks);
    if (due.length < DEVICE_BATCH) break;
  }
  return report;
}

async function deleteDevices(
  deps: Deps,
  devices: DeviceRef[],
  now: number,
  deleteBefore: number,
  report: CleanupReport,
  hooks: LifecycleHooks = {},
): Promise<void> {
  await hooks.onBeforeDelete?.(devices);
  const ids = devices.map((d) => d.id);
  const events: BusEvent[] = [];
  await deps.db.transaction().execute(async (tx) => {
    events.length = 0;
    // Checked again under the row locks: a device that logged in meanwhile stays.
    const gone = await tx.selectFrom("devices").select(["id", "account_id"])
      .where("id", "in", ids).where("revoked_at", "is", null)
      .where("last_seen_at", "<=", deleteBefore).forUpdate().execute();
    if (gone.length === 0) return;
    const goneIds = gone.map((d) => d.id);
    // Keep the token hashes (until they would have expired) so they answer unknown_device.
    await sql`
      insert into token_tombstones (hash, device_id, expires_at)
      select hash, device_id, expires_at from tokens
      where device_id = any(${goneIds}::text[]) and expires_at > ${now}
      on conflict (hash) do nothing`.execute(tx);
    // Tokens and cursors go with the device (ON DELETE CASCADE).
    await tx.deleteFrom("devices").where("id", "in", goneIds).execute();
    for (const id of goneIds) events.push({ kind: "revoked", device: id });
    report.devicesDeleted += gone.length;

    const accounts = [...new Set(gone.map((d) => d.account_id))];
    const empty = await tx.selectFrom("accounts").select("id").where("id", "in", accounts)
      .where((eb) =>
        eb.not(eb.exists(
          eb.selectFrom("devices").select("devices.id")
            .whereRef("devices.account_id", "=", "accounts.id"),
        ))
      ).execute();
    for (const { id } of empty) await removeAccount(tx, id, report, events);
  });
  for (const event of events) deps.bus.publish(event);
}

/**
 * Removes an account that has no device left, leaving each of its groups: the group is deleted
 * when it was the last member; when it was the last owner, the longest-standing admin (else
 * member) becomes owner, so no group is left without one.
 */
async function removeAccount(
  tx: Db,
  account: string,
  report: CleanupReport,
  events: BusEvent[],
): Promise<void> {
  const memberships = await tx.selectFrom("group_members").select(["group_id", "role"])
    .where("account_id", "=", account).orderBy("group_id").execute();
  for (const { group_id: group, role } of memberships) {
    // The group row lock orders this with sends and membership changes of the group.
    await tx.selectFrom("groups").select("id").where("id", "=", group).forUpdate().execute();
    const others = await tx.selectFrom("group_members").select(["account_id", "role"])
      .where("group_id", "=", group).where("account_id", "<>", account)
      .orderBy("added_at").orderBy("account_id").execute();
    const notify = [account, ...others.map((m) => m.account_id)];
    if (others.length === 0) {
      // Messages and cursors go with the group; its blobs are left for the sweeper.
      await tx.deleteFrom("groups").where("id", "=", group).execute();
      events.push({ kind: "membership", group, event: "deleted", account, notify });
      report.groupsDeleted++;
      continue;
    }
    await tx.deleteFrom("group_members").where("group_id", "=", group)
      .where("account_id", "=", account).execute();
    await tx.updateTable("groups").set({ send_verifier: null }).where("id", "=", group).execute();
    report.membershipsRemoved++;
    events.push({ kind: "membership", group, event: "member_removed", account, notify });
    if (role === "owner" && !others.some((m) => m.role === "owner")) {
      const heir = others.find((m) => m.role === "admin") ?? others[0];
      await tx.updateTable("group_members").set({ role: "owner" })
        .where("group_id", "=", group).where("account_id", "=", heir.account_id).execute();
      events.push({
        kind: "membership",
        group,
        event: "role_changed",
        account: heir.account_id,
        notify: notify.slice(1),
      });
    }
  }
  await tx.deleteFrom("accounts").where("id", "=", account).execute();
  report.accountsDeleted++;
}

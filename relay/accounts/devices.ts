/**
 * @module
 * The device directory (PROTOCOL.md "Device directory"): who may see an account's devices,
 * each device's status (`active`, `inactive`, `revoked`), and revocation by the owning account.
 * A group that an account has only been invited to sees what encryption needs — device ids,
 * certificates, revoked or not — but no names, platforms or activity (`consent.ts`).
 * `last_seen_at` is shown at the granularity it is stored at (`SEALPOST_LAST_SEEN_GRANULARITY`).
 */

import type { Deps } from "../deps.ts";
import { notFound } from "../errors.ts";
import { exposureOf } from "./consent.ts";
import { recordAudit } from "../store/audit.ts";

/** Those of `devices` that exist and are not revoked. */
export async function liveDevices(deps: Deps, devices: string[]): Promise<Set<string>> {
  if (devices.length === 0) return new Set();
  const rows = await deps.db.selectFrom("devices").select("id").where("id", "in", devices)
    .where("revoked_at", "is", null).execute();
  return new Set(rows.map((d) => d.id));
}

/** A device as the directory shows it. */
export type DeviceInfo = {
  id: string;
  cert: string;
  name: string | null;
  platform: string | null;
  created_at: number;
  /** Null when the viewer may not see it (the account has not accepted a shared group). */
  last_seen_at: number | null;
  status: "active" | "inactive" | "revoked";
};

/** The status of a device from its revocation and last activity. */
export function deviceStatus(
  revokedAt: number | null,
  lastSeenAt: number,
  now: number,
  inactiveAfterMs: number,
): DeviceInfo["status"] {
  if (revokedAt !== null) return "revoked";
  return now - lastSeenAt >= inactiveAfterMs ? "inactive" : "active";
}

/**
 * Lists an account's devices for `viewer`, or throws `404` when the viewer may not see them
 * (the same answer as for an account that does not exist: no existence oracle). For a viewer
 * that shares only groups the account is invited to, names, platforms and `last_seen_at` are
 * null and `inactive` shows as `active` (it would tell activity); an invited account the relay
 * does not know lists no devices (`[]`), like a known one whose devices were all cleaned up.
 */
export async function listDevices(
  deps: Deps,
  viewer: string,
  account: string,
): Promise<DeviceInfo[]> {
  const exposure = await exposureOf(deps, viewer, account);
  if (exposure === "none") throw notFound("No such account");
  const rows = await deps.db.selectFrom("devices")
    .select(["id", "cert", "name", "platform", "created_at", "last_seen_at", "revoked_at"])
    .where("account_id", "=", account).orderBy("created_at").orderBy("id").execute();
  const now = deps.clock.now();
  const inactiveAfterMs = (await deps.settings.get()).inactive_after_s * 1000;
  return rows.map((row) => {
    const lastSeen = deps.activity.coarse(
      Math.max(row.last_seen_at, deps.activity.pending(row.id) ?? 0),
    );
    const status = deviceStatus(row.revoked_at, lastSeen, now, inactiveAfterMs);
    if (exposure === "encryption") {
      return {
        id: row.id,
        cert: row.cert,
        name: null,
        platform: null,
        created_at: row.created_at,
        last_seen_at: null,
        status: status === "revoked" ? "revoked" : "active",
      };
    }
    return {
      id: row.id,
      cert: row.cert,
      name: row.name,
      platform: row.platform,
      created_at: row.created_at,
      last_seen_at: lastSeen,
      status,
    };
  });
}

/**
 * Revokes `device`, which must belong to `account` (else `404`). Idempotent. Its tokens stop
 * working (`403 device_revoked`); the caller closes its live connections.
 */
export async function revokeDevice(deps: Deps, account: string, device: string): Promise<void> {
  const row = await deps.db.selectFrom("devices").select(["account_id", "revoked_at"])
    .where("id", "=", device).executeTakeFirst();
  if (!row || row.account_id !== account) throw notFound("No such device in your account");
  if (row.revoked_at !== null) return;
  await deps.db.updateTable("devices").set({ revoked_at: deps.clock.now() })
    .where("id", "=", device).where("revoked_at", "is", null).execute();
  // Its key packages must never be handed out again (PROTOCOL.md "Key packages").
  await deps.db.deleteFrom("key_packages").where("device_id", "=", device).execute();
}

/**
 * Revokes any device as an admin, recording it in the audit log. Returns false when there is no
 * such device; revoking a revoked device is a no-op. The caller publishes the `revoked` bus
 * event so the device's live connections close with `4003` on every instance.
 */
export async function adminRevokeDevice(
  deps: Deps,
  device: string,
  actor: string,
): Promise<boolean> {
  const row = await deps.db.selectFrom("devices").select(["account_id", "revoked_at"])
    .where("id", "=", device).executeTakeFirst();
  if (!row) return false;
  if (row.revoked_at !== null) return true;
  const now = deps.clock.now();
  await deps.db.transaction().execute(async (tx) => {
    await tx.updateTable("devices").set({ revoked_at: now })
      .where("id", "=", device).where("revoked_at", "is", null).execute();
    await recordAudit({ db: tx, clock: deps.clock }, actor, "device.revoke", {
      device,
      account: row.account_id,
      before: "active",
      after: "revoked",
    }, now);
  });
  await deps.db.deleteFrom("key_packages").where("device_id", "=", device).execute();
  return true;
}

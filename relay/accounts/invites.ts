/**
 * @module
 * Invite codes for `invite` registration mode: each has a use count and an optional expiry, and
 * is stored only as a hash. The code is shown once, at creation.
 */

import type { Kysely } from "kysely";
import type { Clock } from "../base/clock.ts";
import type { Db } from "../store/database.ts";
import { randomId, sha256 } from "../base/encoding.ts";
import { RelayError } from "../errors.ts";
import type { Database, InvitesTable } from "../store/schema.ts";

/** An invite as admins see it: its row without the code's hash, and its status. */
export type InviteInfo = Omit<InvitesTable, "code_hash"> & {
  status: "active" | "used_up" | "expired" | "revoked";
};

/** Options for a new invite. */
export type InviteOptions = { maxUses?: number; expiresAt?: number | null; note?: string | null };

/**
 * Creates an invite and returns its code (shown once) with its id.
 *
 * @example
 * ```ts
 * const { code } = await createInvite(db, clock, { maxUses: 5 });
 * ```
 */
export async function createInvite(
  db: Db,
  clock: Clock,
  options: InviteOptions = {},
): Promise<{ id: string; code: string } & InviteInfo> {
  const maxUses = options.maxUses ?? 1;
  if (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > 1_000_000) {
    throw new RelayError("invalid_request", "An invite's uses must be a whole number from 1");
  }
  const id = randomId(6);
  const code = randomId(18);
  const row = {
    id,
    code_hash: await sha256(code),
    max_uses: maxUses,
    uses: 0,
    expires_at: options.expiresAt ?? null,
    note: options.note ?? null,
    created_at: clock.now(),
    revoked_at: null,
  };
  await db.insertInto("invites").values(row).execute();
  const { code_hash: _, ...info } = row;
  return { ...info, code, status: "active" };
}

/**
 * Uses one redemption of `code` inside the registering transaction, race-free: the conditional
 * update only succeeds while uses remain. Throws `403 forbidden` for an unknown, used-up, expired
 * or revoked code.
 */
export async function redeemInvite(tx: Kysely<Database>, code: string, now: number): Promise<void> {
  const hash = await sha256(code);
  const updated = await tx.updateTable("invites")
    .set((eb) => ({ uses: eb("uses", "+", 1) }))
    .where("code_hash", "=", hash)
    .where("revoked_at", "is", null)
    .where((eb) => eb("uses", "<", eb.ref("max_uses")))
    .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) !== 1) {
    throw new RelayError("forbidden", "The invite code is unknown, used up, expired or revoked");
  }
}

function status(row: Omit<InviteInfo, "status">, now: number): InviteInfo["status"] {
  if (row.revoked_at !== null) return "revoked";
  if (row.expires_at !== null && row.expires_at <= now) return "expired";
  if (row.uses >= row.max_uses) return "used_up";
  return "active";
}

/** Lists invites, newest first. */
export async function listInvites(db: Db, clock: Clock): Promise<InviteInfo[]> {
  const rows = await db.selectFrom("invites")
    .select(["id", "max_uses", "uses", "expires_at", "note", "created_at", "revoked_at"])
    .orderBy("created_at", "desc").execute();
  const now = clock.now();
  return rows.map((row) => ({ ...row, status: status(row, now) }));
}

/** Revokes an invite by id; false when there is no such invite. */
export async function revokeInvite(db: Db, clock: Clock, id: string): Promise<boolean> {
  const result = await db.updateTable("invites").set({ revoked_at: clock.now() })
    .where("id", "=", id).where("revoked_at", "is", null).executeTakeFirst();
  if (Number(result.numUpdatedRows) === 1) return true;
  return !!(await db.selectFrom("invites").select("id").where("id", "=", id).executeTakeFirst());
}

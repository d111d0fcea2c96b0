/**
 * @module
 * Key packages (PROTOCOL.md "Key packages"): opaque one-time public key material — MLS
 * KeyPackages, Signal-style prekeys, any app's own format — that a device uploads per `kind`,
 * and that anyone may claim, one package per active device of an account, to start an
 * encrypted session with it. The relay never looks inside a package.
 *
 * Guarantees: each one-time package is handed out **exactly once**, even to concurrent
 * claimers on many instances — a claim deletes the row it returns, picking it with
 * `FOR UPDATE SKIP LOCKED` so concurrent claims take different rows instead of waiting on (or
 * both returning) the same one. A device that has none left hands out its last-resort package,
 * which is reused until replaced. Packages of revoked devices are deleted at revocation (and
 * again by cleanup, for an upload that raced it); packages of deleted devices go with the row.
 */

import { sql } from "kysely";
import type { Db } from "../store/database.ts";
import type { Deps } from "../deps.ts";
import { deviceStatus } from "./devices.ts";
import { fromBase64Url, toBase64Url } from "../base/encoding.ts";
import { invalid, notFound, RelayError } from "../errors.ts";
import type { PutKeysBody } from "../protocol.ts";
import type { RateLimiter } from "../rate_limit.ts";

/** At most this many one-time packages are stored per device and kind. */
export const MAX_STORED_PACKAGES = 1000;

/** Counts of one kind, as `GET /v1/devices/me/keys` reports them. */
export type KeyCounts = { available: number; last_resort: boolean };

/** One claimed package. */
export type ClaimedPackage = { device: string; package: string; last_resort: boolean };

/**
 * Stores one-time packages and (optionally) replaces the last resort of `device` for
 * `body.kind`, all or nothing. Throws `413 too_large` for a package over `max_message_bytes`
 * and `409 conflict` when the device would then hold more than {@link MAX_STORED_PACKAGES}
 * one-time packages of the kind (nothing is stored; the message says how many fit).
 *
 * @example
 * ```ts
 * await putKeyPackages(deps, device, { kind: "mls", packages: [kp1, kp2], last_resort: kp3 });
 * ```
 */
export async function putKeyPackages(deps: Deps, device: string, body: PutKeysBody): Promise<void> {
  const limit = deps.config.maxMessageBytes;
  const decode = (text: string, what: string): Uint8Array => {
    const bytes = fromBase64Url(text);
    if (!bytes) throw invalid(`${what}: must be base64url without padding`);
    if (bytes.length > limit) {
      throw new RelayError(
        "too_large",
        `${what} is ${bytes.length} bytes; the limit is ${limit} (max_message_bytes)`,
      );
    }
    return bytes;
  };
  const packages = body.packages.map((p, i) => decode(p, `packages.${i}`));
  const lastResort = body.last_resort === undefined
    ? undefined
    : decode(body.last_resort, "last_resort");
  if (packages.length === 0 && !lastResort) return;
  const now = deps.clock.now();
  await deps.db.transaction().execute(async (tx) => {
    // The device row lock serializes uploads of one device, so the cap holds under concurrency,
    // and orders an upload with the device's revocation (which deletes its packages after).
    const row = await tx.selectFrom("devices").select("revoked_at").where("id", "=", device)
      .forUpdate().executeTakeFirst();
    if (!row) throw new RelayError("unknown_device");
    if (row.revoked_at !== null) throw new RelayError("device_revoked");
    if (packages.length > 0) {
      const { n } = await tx.selectFrom("key_packages").select(sql<number>`count(*)::int`.as("n"))
        .where("device_id", "=", device).where("kind", "=", body.kind)
        .where("last_resort", "=", false).executeTakeFirstOrThrow();
      if (n + packages.length > MAX_STORED_PACKAGES) {
        throw new RelayError(
          "conflict",
          `This device already stores ${n} packages of kind ${body.kind}; at most ` +
            `${MAX_STORED_PACKAGES} are kept, so ${Math.max(0, MAX_STORED_PACKAGES - n)} more fit`,
        );
      }
      await tx.insertInto("key_packages").values(packages.map((bytes) => ({
        device_id: device,
        kind: body.kind,
        package: bytes,
        last_resort: false,
        created_at: now,
      }))).execute();
    }
    if (lastResort) {
      await tx.deleteFrom("key_packages").where("device_id", "=", device)
        .where("kind", "=", body.kind).where("last_resort", "=", true).execute();
      await tx.insertInto("key_packages").values({
        device_id: device,
        kind: body.kind,
        package: lastResort,
        last_resort: true,
        created_at: now,
      }).execute();
    }
  });
}

/** The caller's counts per kind, so it knows when to replenish. */
export async function keyPackageCounts(
  deps: Deps,
  device: string,
): Promise<Record<string, KeyCounts>> {
  const rows = await deps.db.selectFrom("key_packages")
    .select([
      "kind",
      sql<number>`(count(*) filter (where not last_resort))::int`.as("available"),
      sql<boolean>`bool_or(last_resort)`.as("last_resort"),
    ])
    .where("device_id", "=", device).groupBy("kind").orderBy("kind").execute();
  const kinds: Record<string, KeyCounts> = {};
  for (const row of rows) {
    kinds[row.kind] = { available: row.available, last_resort: row.last_resort };
  }
  return kinds;
}

/**
 * Claims one package of `kind` for each active device of `account` (oldest device first):
 * a one-time package, deleted as it is handed out, else the device's last resort. A device with
 * neither is left out. Throws `404` for an unknown account. Claiming needs no shared group —
 * an inviter claims the packages of someone not yet in any group with it. Two limits keep
 * anyone from draining an account's packages: the per-caller rate (applied by the route) and
 * `perTarget`, keyed by the claimed device and kind: past it, that device's last resort is
 * handed out instead of a one-time package, however many callers claim.
 */
export async function claimKeyPackages(
  deps: Deps,
  account: string,
  kind: string,
  perTarget?: RateLimiter,
): Promise<ClaimedPackage[]> {
  const known = await deps.db.selectFrom("accounts").select("id").where("id", "=", account)
    .executeTakeFirst();
  if (!known) throw notFound("No such account");
  const devices = await deps.db.selectFrom("devices")
    .select(["id", "last_seen_at", "revoked_at"])
    .where("account_id", "=", account).where("revoked_at", "is", null)
    .orderBy("created_at").orderBy("id").execute();
  const now = deps.clock.now();
  const inactiveAfterMs = (await deps.settings.get()).inactive_after_s * 1000;
  const out: ClaimedPackage[] = [];
  for (const device of devices) {
    const lastSeen = Math.max(device.last_seen_at, deps.activity.pending(device.id) ?? 0);
    if (deviceStatus(device.revoked_at, lastSeen, now, inactiveAfterMs) !== "active") continue;
    // Past the per-target budget the one-time packages are kept for the device's real peers.
    const oneTime = !perTarget || perTarget.take(`${device.id}\0${kind}`) === 0;
    const claimed = await claimOne(deps.db, device.id, kind, oneTime);
    if (claimed) out.push({ device: device.id, ...claimed });
  }
  return out;
}

/** Takes one one-time package of `device` (deleting it), else reads its last resort. */
async function claimOne(
  db: Db,
  device: string,
  kind: string,
  oneTime: boolean,
): Promise<{ package: string; last_resort: boolean } | null> {
  if (!oneTime) return await lastResort(db, device, kind);
  // One statement: the row it deletes is the row it returns, and a row another claimer holds
  // locked is skipped rather than waited for (and so never returned twice).
  const taken = await sql<{ package: Uint8Array }>`
    delete from key_packages where id = (
      select id from key_packages
      where device_id = ${device} and kind = ${kind} and not last_resort
      order by id limit 1
      for update skip locked
    )
    returning package`.execute(db);
  if (taken.rows.length > 0) {
    return { package: encode(taken.rows[0].package), last_resort: false };
  }
  return await lastResort(db, device, kind);
}

async function lastResort(
  db: Db,
  device: string,
  kind: string,
): Promise<{ package: string; last_resort: boolean } | null> {
  const fallback = await db.selectFrom("key_packages").select("package")
    .where("device_id", "=", device).where("kind", "=", kind).where("last_resort", "=", true)
    .executeTakeFirst();
  return fallback ? { package: encode(fallback.package), last_resort: true } : null;
}

function encode(bytes: Uint8Array): string {
  return toBase64Url(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
}

/**
 * Deletes key packages of revoked devices: what an upload that raced its device's revocation
 * left behind (claims never hand them out). Cleanup runs it each sweep. Returns how many went.
 */
export async function removeRevokedKeyPackages(db: Db): Promise<number> {
  const result = await sql`
    delete from key_packages k using devices d
    where d.id = k.device_id and d.revoked_at is not null`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

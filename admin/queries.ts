/**
 * @module
 * What the admin dashboard and the admin CLI read: counts for the overview, device search and
 * detail, accounts, groups with their message count and bytes, storage and the audit log.
 * Metadata only — no query here selects a message body, only its size. The dashboard's pages
 * read through these functions and never write SQL of their own.
 */

import { sql } from "kysely";
import type { Deps } from "../relay/deps.ts";
import type { DevicesTable } from "../relay/store/schema.ts";

/** A device's status as admins see it (`pending_deletion`: past `delete_after`, not swept yet). */
export type AdminDeviceStatus = "active" | "inactive" | "pending_deletion" | "revoked";
/** The statuses in display order. */
export const DEVICE_STATUSES: AdminDeviceStatus[] = [
  "active",
  "inactive",
  "pending_deletion",
  "revoked",
];

/** A device row of the admin's device list. */
export type AdminDevice = {
  id: string;
  account: string;
  name: string | null;
  platform: string | null;
  created_at: number;
  last_seen_at: number;
  revoked_at: number | null;
  status: AdminDeviceStatus;
};

/** A group row of the admin's group list. */
export type AdminGroup = {
  id: string;
  members: number;
  last_seq: number;
  retention_s: number;
  created_at: number;
  messages: number;
  bytes: number;
};

/** An audit log entry, detail parsed. */
export type AuditEntry = {
  id: number;
  at: number;
  actor: string;
  action: string;
  detail: Record<string, unknown>;
};

/** Thresholds in milliseconds, from the run-time settings. */
async function thresholds(deps: Deps): Promise<{ inactive: number; remove: number }> {
  const settings = await deps.settings.get();
  return { inactive: settings.inactive_after_s * 1000, remove: settings.delete_after_s * 1000 };
}

function statusOf(
  revokedAt: number | null,
  lastSeen: number,
  now: number,
  t: { inactive: number; remove: number },
): AdminDeviceStatus {
  if (revokedAt !== null) return "revoked";
  if (now - lastSeen >= t.remove) return "pending_deletion";
  if (now - lastSeen >= t.inactive) return "inactive";
  return "active";
}

/** Escapes `%`, `_` and `\` for a LIKE pattern. */
function likePrefix(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`) + "%";
}

/** Devices by status, for the overview. */
export async function countDevicesByStatus(
  deps: Deps,
): Promise<Record<AdminDeviceStatus, number>> {
  const now = deps.clock.now();
  const t = await thresholds(deps);
  const row = await deps.db.selectFrom("devices").select([
    sql<number>`count(*) filter (where revoked_at is null and last_seen_at > ${
      now - t.inactive
    })::int`
      .as("active"),
    sql<number>`count(*) filter (where revoked_at is null and last_seen_at <= ${
      now - t.inactive
    } and last_seen_at > ${now - t.remove})::int`.as("inactive"),
    sql<number>`count(*) filter (where revoked_at is null and last_seen_at <= ${
      now - t.remove
    })::int`.as("pending_deletion"),
    sql<number>`count(*) filter (where revoked_at is not null)::int`.as("revoked"),
  ]).executeTakeFirstOrThrow();
  return row;
}

/** Numbers of the overview that come from the database. */
export type StoredCounts = {
  devices: Record<AdminDeviceStatus, number>;
  accounts: number;
  groups: number;
  invites_active: number;
};

/** Counts of accounts, groups, active invites and devices by status. */
export async function storedCounts(deps: Deps): Promise<StoredCounts> {
  const now = deps.clock.now();
  const [devices, accounts, groups, invites] = await Promise.all([
    countDevicesByStatus(deps),
    deps.db.selectFrom("accounts").select(sql<number>`count(*)::int`.as("n"))
      .executeTakeFirstOrThrow(),
    deps.db.selectFrom("groups").select(sql<number>`count(*)::int`.as("n"))
      .executeTakeFirstOrThrow(),
    deps.db.selectFrom("invites").select(sql<number>`count(*)::int`.as("n"))
      .where("revoked_at", "is", null)
      .where((eb) => eb("uses", "<", eb.ref("max_uses")))
      .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
      .executeTakeFirstOrThrow(),
  ]);
  return { devices, accounts: accounts.n, groups: groups.n, invites_active: invites.n };
}

/** Storage in use: the database, and blobs when there is a blob store (null otherwise). */
export type StorageUse = {
  database_bytes: number;
  blob_bytes: number | null;
  blob_count: number | null;
};

/** The database's size on disk (`pg_database_size`) and, given `blobUsage`, the blobs'. */
export async function storageUse(
  deps: Deps,
  blobUsage?: () => Promise<{ blobs: number; bytes: number }>,
): Promise<StorageUse> {
  const [result, blobs] = await Promise.all([
    sql<{ size: number }>`select pg_database_size(current_database())::bigint as size`
      .execute(deps.db),
    blobUsage ? blobUsage() : Promise.resolve(null),
  ]);
  return {
    database_bytes: Number(result.rows[0]?.size ?? 0),
    blob_bytes: blobs ? Number(blobs.bytes) : null,
    blob_count: blobs ? blobs.blobs : null,
  };
}

/** The newest audit entry written by the sweeper (`sweep…` actions), if any. */
export async function lastSweep(deps: Deps): Promise<AuditEntry | null> {
  const row = await deps.db.selectFrom("audit_log").selectAll()
    .where("action", "like", "sweep%").orderBy("id", "desc").limit(1).executeTakeFirst();
  return row ? parseAudit(row) : null;
}

/** A device search. */
export type DeviceQuery = {
  /** A device id, account id (prefix) or name (substring). */
  q?: string;
  status?: AdminDeviceStatus;
  platform?: string;
  limit?: number;
};

/** Searches devices, most recently seen first. */
export async function searchDevices(deps: Deps, query: DeviceQuery = {}): Promise<AdminDevice[]> {
  const now = deps.clock.now();
  const t = await thresholds(deps);
  let select = deps.db.selectFrom("devices")
    .select(["id", "account_id", "name", "platform", "created_at", "last_seen_at", "revoked_at"]);
  const q = query.q?.trim();
  if (q) {
    select = select.where((eb) =>
      eb.or([
        eb("id", "like", likePrefix(q)),
        eb("account_id", "like", likePrefix(q)),
        eb("name", "ilike", `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`),
      ])
    );
  }
  if (query.platform) select = select.where("platform", "=", query.platform);
  switch (query.status) {
    case "revoked":
      select = select.where("revoked_at", "is not", null);
      break;
    case "active":
      select = select.where("revoked_at", "is", null).where("last_seen_at", ">", now - t.inactive);
      break;
    case "inactive":
      select = select.where("revoked_at", "is", null)
        .where("last_seen_at", "<=", now - t.inactive).where("last_seen_at", ">", now - t.remove);
      break;
    case "pending_deletion":
      select = select.where("revoked_at", "is", null).where("last_seen_at", "<=", now - t.remove);
      break;
  }
  const rows = await select.orderBy("last_seen_at", "desc").orderBy("id")
    .limit(Math.min(query.limit ?? 100, 1000)).execute();
  return rows.map((row) => adminDevice(deps, row, now, t));
}

/** The platforms devices reported, for the filter. */
export async function devicePlatforms(deps: Deps): Promise<string[]> {
  const rows = await deps.db.selectFrom("devices").select("platform").distinct()
    .where("platform", "is not", null).orderBy("platform").limit(100).execute();
  return rows.map((r) => r.platform!);
}

/** A group an account belongs to, with the account's role. */
export type AccountGroup = { id: string; role: string; members: number; last_seq: number };

/** Everything the admin sees about one device. */
export type DeviceDetail = AdminDevice & {
  /** The kind of push target registered (`webpush`, `unifiedpush`, `apns`, `fcm`), or null. */
  push_kind: string | null;
  groups: AccountGroup[];
  /** The other devices of its account. */
  siblings: AdminDevice[];
};

async function accountGroups(deps: Deps, account: string): Promise<AccountGroup[]> {
  const rows = await deps.db.selectFrom("group_members as gm")
    .innerJoin("groups as g", "g.id", "gm.group_id")
    .select([
      "g.id",
      "gm.role",
      "g.last_seq",
      sql<number>`(select count(*)::int from group_members m where m.group_id = g.id)`.as(
        "members",
      ),
    ])
    .where("gm.account_id", "=", account).orderBy("g.created_at").limit(500).execute();
  return rows.map((r) => ({ id: r.id, role: r.role, members: r.members, last_seq: r.last_seq }));
}

/** One device with its groups (via its account) and sibling devices; null when unknown. */
export async function deviceDetail(deps: Deps, id: string): Promise<DeviceDetail | null> {
  const [device] = await searchDevicesById(deps, [id]);
  if (!device) return null;
  const [groups, siblings, push] = await Promise.all([
    accountGroups(deps, device.account),
    accountDevices(deps, device.account),
    deps.db.selectFrom("push_targets").select("kind").where("device_id", "=", id)
      .executeTakeFirst(),
  ]);
  return {
    ...device,
    push_kind: push?.kind ?? null,
    groups,
    siblings: siblings.filter((d) => d.id !== id),
  };
}

type DeviceRow = Omit<DevicesTable, "cert">;

/** A device row as the dashboard shows it: last seen including unflushed activity, and status. */
function adminDevice(
  deps: Deps,
  row: DeviceRow,
  now: number,
  t: Awaited<ReturnType<typeof thresholds>>,
): AdminDevice {
  const lastSeen = Math.max(row.last_seen_at, deps.activity.pending(row.id) ?? 0);
  return {
    id: row.id,
    account: row.account_id,
    name: row.name,
    platform: row.platform,
    created_at: row.created_at,
    last_seen_at: lastSeen,
    revoked_at: row.revoked_at,
    status: statusOf(row.revoked_at, lastSeen, now, t),
  };
}

async function searchDevicesById(deps: Deps, ids: string[]): Promise<AdminDevice[]> {
  if (ids.length === 0) return [];
  const now = deps.clock.now();
  const t = await thresholds(deps);
  const rows = await deps.db.selectFrom("devices")
    .select(["id", "account_id", "name", "platform", "created_at", "last_seen_at", "revoked_at"])
    .where("id", "in", ids).execute();
  return rows.map((row) => adminDevice(deps, row, now, t));
}

async function accountDevices(deps: Deps, account: string): Promise<AdminDevice[]> {
  const ids = await deps.db.selectFrom("devices").select("id").where("account_id", "=", account)
    .orderBy("created_at").execute();
  const devices = await searchDevicesById(deps, ids.map((r) => r.id));
  return devices.sort((a, b) => a.created_at - b.created_at);
}

/** An account with its devices and groups. */
export type AccountDetail = {
  id: string;
  created_at: number;
  devices: AdminDevice[];
  groups: AccountGroup[];
};

/** One account; null when unknown. */
export async function accountDetail(deps: Deps, id: string): Promise<AccountDetail | null> {
  const account = await deps.db.selectFrom("accounts").selectAll().where("id", "=", id)
    .executeTakeFirst();
  if (!account) return null;
  const [devices, groups] = await Promise.all([
    accountDevices(deps, id),
    accountGroups(deps, id),
  ]);
  return { id, created_at: account.created_at, devices, groups };
}

/** Lists groups, newest first, optionally those whose id or a member account starts with `q`. */
export async function listGroupsForAdmin(
  deps: Deps,
  query: { q?: string; limit?: number } = {},
): Promise<AdminGroup[]> {
  let select = deps.db.selectFrom("groups as g").select([
    "g.id",
    "g.last_seq",
    "g.retention_s",
    "g.created_at",
    sql<number>`(select count(*)::int from group_members m where m.group_id = g.id)`.as(
      "members",
    ),
    sql<number>`(select count(*)::int from messages x where x.group_id = g.id)`.as("messages"),
    sql<number>`(select coalesce(sum(octet_length(x.body)), 0)::bigint from messages x
      where x.group_id = g.id)`.as("bytes"),
  ]);
  const q = query.q?.trim();
  if (q) {
    select = select.where((eb) =>
      eb.or([
        eb("g.id", "like", likePrefix(q)),
        eb.exists(
          eb.selectFrom("group_members as m").select("m.group_id")
            .whereRef("m.group_id", "=", "g.id").where("m.account_id", "like", likePrefix(q)),
        ),
      ])
    );
  }
  const rows = await select.orderBy("g.created_at", "desc").orderBy("g.id")
    .limit(Math.min(query.limit ?? 100, 1000)).execute();
  return rows.map((r) => ({ ...r, bytes: Number(r.bytes) }));
}

/** A group with its members, for the admin. */
export type GroupDetail = AdminGroup & {
  member_list: { account: string; role: string; added_at: number; devices: number }[];
};

/** One group; null when unknown. */
export async function groupDetail(deps: Deps, id: string): Promise<GroupDetail | null> {
  const [group] = await listGroupsForAdmin(deps, { q: id, limit: 50 }).then((all) =>
    all.filter((g) => g.id === id)
  );
  if (!group) return null;
  const members = await deps.db.selectFrom("group_members as m").select([
    "m.account_id",
    "m.role",
    "m.added_at",
    sql<number>`(select count(*)::int from devices d where d.account_id = m.account_id
      and d.revoked_at is null)`.as("devices"),
  ]).where("m.group_id", "=", id).orderBy("m.added_at").orderBy("m.account_id").execute();
  return {
    ...group,
    member_list: members.map((m) => ({
      account: m.account_id,
      role: m.role,
      added_at: m.added_at,
      devices: m.devices,
    })),
  };
}

function parseAudit(
  row: { id: number; at: number; actor: string; action: string; detail: string },
): AuditEntry {
  let detail: Record<string, unknown>;
  try {
    detail = JSON.parse(row.detail);
  } catch {
    detail = { text: row.detail };
  }
  return { id: Number(row.id), at: row.at, actor: row.actor, action: row.action, detail };
}

/**
 * The audit log, newest first; `before` pages back by id; `action` filters by prefix;
 * `withoutSweeps` leaves out the sweeper's routine `sweep` rows.
 */
export async function listAudit(
  deps: Deps,
  query: { before?: number; action?: string; limit?: number; withoutSweeps?: boolean } = {},
): Promise<AuditEntry[]> {
  let select = deps.db.selectFrom("audit_log").selectAll();
  if (query.withoutSweeps) select = select.where("action", "<>", "sweep");
  if (query.before !== undefined) select = select.where("id", "<", query.before);
  if (query.action) select = select.where("action", "like", likePrefix(query.action));
  const rows = await select.orderBy("id", "desc").limit(Math.min(query.limit ?? 100, 500))
    .execute();
  return rows.map(parseAudit);
}

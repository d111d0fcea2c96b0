/**
 * @module
 * Kysely table types: the shape of the database as the migrations in `migrations/` build it.
 * Times are `bigint` milliseconds read as numbers; binary values are `bytea`.
 */

import type { Generated } from "kysely";

export interface AccountsTable {
  id: string;
  created_at: number;
}

export interface DevicesTable {
  id: string;
  account_id: string;
  cert: string;
  name: string | null;
  platform: string | null;
  created_at: number;
  last_seen_at: number;
  revoked_at: number | null;
}

export interface AuthNoncesTable {
  nonce: string;
  expires_at: number;
}

export interface TokensTable {
  hash: string;
  device_id: string;
  created_at: number;
  expires_at: number;
}

/** Hashes of tokens whose device was deleted by cleanup, so they answer `unknown_device`. */
export interface TokenTombstonesTable {
  hash: string;
  device_id: string;
  expires_at: number;
}

export interface InvitesTable {
  id: string;
  code_hash: string;
  max_uses: number;
  uses: number;
  expires_at: number | null;
  note: string | null;
  created_at: number;
  revoked_at: number | null;
}

export interface SettingsTable {
  key: string;
  value: string;
  updated_at: number;
}

export interface GroupsTable {
  id: string;
  last_seq: number;
  /** Seconds; 0 keeps messages until deleted (only when the server's max TTL is forever). */
  retention_s: number;
  created_at: number;
  /** SHA-256 of the group's send capability (sealed sends, migration 0009); null: none. */
  send_verifier: Generated<Uint8Array | null>;
}

export interface GroupMembersTable {
  group_id: string;
  account_id: string;
  role: "owner" | "admin" | "member";
  added_at: number;
  /**
   * `invited` until one of the account's devices accepts (migration 0008); others then see its
   * devices' names, platforms, activity and presence. The account need not be registered yet.
   */
  state: Generated<"invited" | "accepted">;
}

export interface MessagesTable {
  group_id: string;
  seq: number;
  /** Null for a sealed send (migration 0009): the relay never knew the sender. */
  sender_account: string | null;
  sender_device: string | null;
  client_id: string;
  body: Uint8Array;
  blob_id: string | null;
  /** The referenced blob's size, so reads need no join. */
  blob_size: number | null;
  to_devices: string[] | null;
  created_at: number;
  expires_at: number | null;
}

export interface CursorsTable {
  device_id: string;
  group_id: string;
  seq: number;
}

/**
 * A blob: declared at `POST /v1/blobs`, verified once uploaded (`uploaded_at`), kept until
 * `expires_at` (an hour after creation until a message references it, then as long as the
 * longest-lived referencing message; null is forever). `group_id` is null once its group is gone.
 */
export interface BlobsTable {
  id: string;
  group_id: string | null;
  account_id: string;
  size: number;
  /** base64url of the raw SHA-256 digest. */
  sha256: string;
  created_at: number;
  uploaded_at: number | null;
  referenced_at: number | null;
  expires_at: number | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  actor: string;
  action: string;
  detail: string;
}

export interface InstancesTable {
  id: string;
  region: string | null;
  version: string;
  started_at: number;
  heartbeat_at: number;
  connections: number;
  leader: boolean;
}

export interface OnlineDevicesTable {
  device_id: string;
  instance_id: string;
  since: number;
}

export interface BusSpillTable {
  id: Generated<number>;
  payload: string;
  created_at: number;
}

/** The admin password as a PBKDF2 hash string (`pbkdf2-sha256$iterations$salt$hash`). */
export interface AdminCredentialsTable {
  id: string;
  password_hash: string;
  updated_at: number;
}

/** Admin login sessions, by the hash of the cookie value. */
export interface AdminSessionsTable {
  token_hash: string;
  created_at: number;
  expires_at: number;
  last_used_at: number;
  ip: string | null;
}

/** One-time setup links for a first start without a password, by hash. */
export interface AdminSetupTokensTable {
  token_hash: string;
  expires_at: number;
}

/**
 * A key package (PROTOCOL.md "Key packages"): opaque public key material of one device and
 * `kind`, handed out once (deleted when claimed) unless it is the device's `last_resort`.
 */
export interface KeyPackagesTable {
  id: Generated<number>;
  device_id: string;
  kind: string;
  package: Uint8Array;
  last_resort: boolean;
  created_at: number;
}

/** A device's push target (PUT /v1/devices/me/push); one per device. */
export interface PushTargetsTable {
  device_id: string;
  kind: "webpush" | "unifiedpush" | "apns" | "fcm";
  /** Web Push and UnifiedPush: the push resource URL. */
  endpoint: string | null;
  /** Web Push (and UnifiedPush with keys): the subscription's P-256 key and auth secret. */
  p256dh: string | null;
  auth: string | null;
  /** APNs device token (hex) or FCM registration token. */
  token: string | null;
  /** APNs: the app's bundle id. */
  topic: string | null;
  sandbox: boolean;
  created_at: number;
  updated_at: number;
  /** When the last wake-up was sent (the minimum interval counts from here). */
  last_push_at: number | null;
  /** When the lifecycle job last queued a wake-up for this idle device. */
  idle_wake_at: number | null;
}

/** A pending wake-up: at most one per device. */
export interface PushOutboxTable {
  device_id: string;
  /** The group with new messages; null for several groups or a lifecycle wake-up. */
  group_id: string | null;
  reason: "message" | "idle";
  created_at: number;
  due_at: number;
  attempts: number;
  last_error: string | null;
}

/** Cluster-wide wake-up results per provider. */
export interface PushStatsTable {
  provider: string;
  sent: number;
  failed: number;
  gone: number;
  retried: number;
  updated_at: number;
}

/** Key pairs the relay generated for itself (the VAPID key), private half as a JWK. */
export interface PushKeysTable {
  name: string;
  public_key: string;
  private_jwk: string;
  created_at: number;
}

/** The whole database. */
export interface Database {
  accounts: AccountsTable;
  devices: DevicesTable;
  auth_nonces: AuthNoncesTable;
  tokens: TokensTable;
  token_tombstones: TokenTombstonesTable;
  invites: InvitesTable;
  settings: SettingsTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  messages: MessagesTable;
  cursors: CursorsTable;
  audit_log: AuditLogTable;
  blobs: BlobsTable;
  admin_credentials: AdminCredentialsTable;
  admin_sessions: AdminSessionsTable;
  admin_setup_tokens: AdminSetupTokensTable;
  instances: InstancesTable;
  online_devices: OnlineDevicesTable;
  bus_spill: BusSpillTable;
  push_targets: PushTargetsTable;
  push_outbox: PushOutboxTable;
  push_stats: PushStatsTable;
  push_keys: PushKeysTable;
  key_packages: KeyPackagesTable;
}

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
}

export interface GroupMembersTable {
  group_id: string;
  account_id: string;
  role: "owner" | "admin" | "member";
  added_at: number;
}

export interface MessagesTable {
  group_id: string;
  seq: number;
  sender_account: string;
  sender_device: string;
  client_id: string;
  body: Uint8Array;
  blob_id: string | null;
  to_devices: string[] | null;
  created_at: number;
  expires_at: number | null;
}

export interface CursorsTable {
  device_id: string;
  group_id: string;
  seq: number;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  actor: string;
  action: string;
  detail: string;
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
}

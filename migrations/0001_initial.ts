/**
 * @module
 * The first schema: accounts, devices, auth nonces, tokens, invites, settings, groups, members,
 * messages, cursors and the audit log. Frozen once released: change the schema in a new file.
 */

import { type Kysely, sql } from "kysely";

/** Runs statements one at a time: drivers' extended protocol takes one statement per query. */
async function run(db: Kysely<unknown>, script: string): Promise<void> {
  for (const statement of script.split(";").map((s) => s.trim()).filter(Boolean)) {
    await sql.raw(statement).execute(db);
  }
}

export async function up(db: Kysely<unknown>): Promise<void> {
  await run(
    db,
    `
    create table accounts (
      id text primary key,
      created_at bigint not null
    );
    create table devices (
      id text primary key,
      account_id text not null references accounts(id) on delete cascade,
      cert text not null,
      name text,
      platform text,
      created_at bigint not null,
      last_seen_at bigint not null,
      revoked_at bigint
    );
    create index devices_account_idx on devices (account_id);
    create index devices_last_seen_idx on devices (last_seen_at) where revoked_at is null;
    create table auth_nonces (
      nonce text primary key,
      expires_at bigint not null
    );
    create index auth_nonces_expires_idx on auth_nonces (expires_at);
    create table tokens (
      hash text primary key,
      device_id text not null references devices(id) on delete cascade,
      created_at bigint not null,
      expires_at bigint not null
    );
    create index tokens_device_idx on tokens (device_id);
    create index tokens_expires_idx on tokens (expires_at);
    create table token_tombstones (
      hash text primary key,
      device_id text not null,
      expires_at bigint not null
    );
    create index token_tombstones_expires_idx on token_tombstones (expires_at);
    create table invites (
      id text primary key,
      code_hash text not null unique,
      max_uses integer not null,
      uses integer not null default 0,
      expires_at bigint,
      note text,
      created_at bigint not null,
      revoked_at bigint
    );
    create table settings (
      key text primary key,
      value text not null,
      updated_at bigint not null
    );
    create table groups (
      id text primary key,
      last_seq bigint not null default 0,
      retention_s bigint not null,
      created_at bigint not null
    );
    create table group_members (
      group_id text not null references groups(id) on delete cascade,
      account_id text not null references accounts(id) on delete cascade,
      role text not null check (role in ('owner', 'admin', 'member')),
      added_at bigint not null,
      primary key (group_id, account_id)
    );
    create index group_members_account_idx on group_members (account_id);
    create table messages (
      group_id text not null references groups(id) on delete cascade,
      seq bigint not null,
      sender_account text not null,
      sender_device text not null,
      client_id text not null,
      body bytea not null,
      blob_id text,
      to_devices text[],
      created_at bigint not null,
      expires_at bigint,
      primary key (group_id, seq)
    );
    create unique index messages_client_id_idx on messages (group_id, sender_device, client_id);
    create index messages_expires_idx on messages (expires_at) where expires_at is not null;
    create table cursors (
      device_id text not null references devices(id) on delete cascade,
      group_id text not null references groups(id) on delete cascade,
      seq bigint not null,
      primary key (device_id, group_id)
    );
    create index cursors_group_idx on cursors (group_id);
    create table audit_log (
      id bigserial primary key,
      at bigint not null,
      actor text not null,
      action text not null,
      detail text not null
    );
    create index audit_log_at_idx on audit_log (at);
  `,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await run(
    db,
    `
    drop table audit_log; drop table cursors; drop table messages; drop table group_members;
    drop table groups; drop table settings; drop table invites; drop table tokens; drop table token_tombstones;
    drop table auth_nonces; drop table devices; drop table accounts;
  `,
  );
}

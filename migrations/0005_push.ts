/**
 * @module
 * Push wake-ups: one push target per device (`PUT /v1/devices/me/push`), the durable outbox of
 * pending wake-ups (at most one per device, retried with backoff, processed by the leader), the
 * cluster-wide sent/failed counts per provider, and the relay's own key pairs (the VAPID key of
 * Web Push, generated on first start). A target goes with its device, a pending wake-up with its
 * target. Frozen once released.
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
    create table push_targets (
      device_id text primary key references devices(id) on delete cascade,
      kind text not null,
      endpoint text,
      p256dh text,
      auth text,
      token text,
      topic text,
      sandbox boolean not null default false,
      created_at bigint not null,
      updated_at bigint not null,
      last_push_at bigint,
      idle_wake_at bigint
    );
    create table push_outbox (
      device_id text primary key references push_targets(device_id) on delete cascade,
      group_id text,
      reason text not null,
      created_at bigint not null,
      due_at bigint not null,
      attempts integer not null default 0,
      last_error text
    );
    create index push_outbox_due_idx on push_outbox (due_at);
    create table push_stats (
      provider text primary key,
      sent bigint not null default 0,
      failed bigint not null default 0,
      gone bigint not null default 0,
      retried bigint not null default 0,
      updated_at bigint not null
    );
    create table push_keys (
      name text primary key,
      public_key text not null,
      private_jwk text not null,
      created_at bigint not null
    )
  `,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await run(
    db,
    `drop table push_keys; drop table push_stats; drop table push_outbox; drop table push_targets`,
  );
}

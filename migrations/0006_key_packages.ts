/**
 * @module
 * Key packages (PROTOCOL.md "Key packages"): opaque one-time public key material a device
 * uploads per `kind` and the relay hands out once each, plus at most one reusable last-resort
 * package per device and kind. Rows go with their device (`on delete cascade`); revocation
 * deletes them explicitly. Frozen once released.
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
    create table key_packages (
      id bigserial primary key,
      device_id text not null references devices(id) on delete cascade,
      kind text not null,
      package bytea not null,
      last_resort boolean not null default false,
      created_at bigint not null
    );
    create index key_packages_claim_idx on key_packages (device_id, kind, last_resort, id);
    create unique index key_packages_last_resort_idx on key_packages (device_id, kind)
      where last_resort
  `,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await run(db, `drop table key_packages`);
}

/**
 * @module
 * Scale-out: the instance registry (heartbeats, connections), which devices are online on which
 * instance (presence and push across instances), and the spill table for bus payloads too large
 * for a Postgres notification. Frozen once released.
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
    create table instances (
      id text primary key,
      region text,
      version text not null,
      started_at bigint not null,
      heartbeat_at bigint not null,
      connections integer not null default 0,
      leader boolean not null default false
    );
    create table online_devices (
      device_id text not null,
      instance_id text not null,
      since bigint not null,
      primary key (device_id, instance_id)
    );
    create index online_devices_instance_idx on online_devices (instance_id);
    create table bus_spill (
      id bigserial primary key,
      payload text not null,
      created_at bigint not null
    );
    create index bus_spill_created_idx on bus_spill (created_at);
  `,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await run(db, `drop table bus_spill; drop table online_devices; drop table instances;`);
}

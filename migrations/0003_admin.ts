/**
 * @module
 * The admin dashboard: its password (a PBKDF2 hash, never the password), its login sessions
 * (stored as hashes so every instance accepts them) and one-time setup tokens for a first start
 * without a password. Frozen once released.
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
    create table admin_credentials (
      id text primary key,
      password_hash text not null,
      updated_at bigint not null
    );
    create table admin_sessions (
      token_hash text primary key,
      created_at bigint not null,
      expires_at bigint not null,
      last_used_at bigint not null,
      ip text
    );
    create index admin_sessions_expires_idx on admin_sessions (expires_at);
    create table admin_setup_tokens (
      token_hash text primary key,
      expires_at bigint not null
    );
  `,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await run(
    db,
    `drop table admin_setup_tokens; drop table admin_sessions; drop table admin_credentials;`,
  );
}

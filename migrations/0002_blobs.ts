/**
 * @module
 * Blobs: one row per blob (its group, uploading account, declared size and SHA-256, and when it
 * expires), and the size of a referenced blob on each message. A blob's `expires_at` starts an
 * hour after creation (the orphan grace) and follows the longest-lived message referencing it;
 * when its group is deleted `group_id` becomes null, which marks it for the sweeper. Frozen once
 * released.
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
    create table blobs (
      id text primary key,
      group_id text references groups(id) on delete set null,
      account_id text not null,
      size bigint not null,
      sha256 text not null,
      created_at bigint not null,
      uploaded_at bigint,
      referenced_at bigint,
      expires_at bigint
    );
    create index blobs_account_idx on blobs (account_id);
    create index blobs_group_idx on blobs (group_id);
    create index blobs_expires_idx on blobs (expires_at) where expires_at is not null;
    create index blobs_groupless_idx on blobs (id) where group_id is null;
    alter table messages add column blob_size bigint
  `,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await run(db, `alter table messages drop column blob_size; drop table blobs`);
}

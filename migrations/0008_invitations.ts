/**
 * @module
 * Consent before exposure (issue 16): a membership is `invited` until one of the account's
 * devices accepts, or `accepted`. Memberships that exist before this migration count as
 * accepted (the column's default). An invitation may name an account the relay does not know
 * yet, so that adding an unknown account answers exactly as adding a known one: the foreign key
 * from `group_members.account_id` to `accounts` goes (account cleanup removes memberships
 * itself). Frozen once released.
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
    alter table group_members add column state text not null default 'accepted'
      check (state in ('invited', 'accepted'));
    alter table group_members drop constraint if exists group_members_account_id_fkey;
    create index group_members_invited_idx on group_members (account_id) where state = 'invited'
  `,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await run(
    db,
    `
    drop index group_members_invited_idx;
    delete from group_members gm where not exists (select 1 from accounts a where a.id = gm.account_id);
    alter table group_members add constraint group_members_account_id_fkey
      foreign key (account_id) references accounts(id) on delete cascade;
    alter table group_members drop column state
  `,
  );
}

/**
 * Tests of relay/store/migrate.ts on PGlite and real Postgres: migrations apply once, a database
 * migrated by a newer Sealpost is refused, several instances migrating the same Postgres at
 * once is safe (the migrator's advisory lock), and `migrateTo` reverts with each `down()`, which
 * undoes exactly its `up()`.
 */

import assert from "node:assert/strict";
import { sql } from "kysely";
import { type DatabaseHandle, openPostgres } from "../../../relay/store/database.ts";
import {
  appliedMigrations,
  assertNotNewer,
  isMigrated,
  migrate,
  migrateTo,
  resolveTarget,
  SchemaTooNewError,
} from "../../../relay/store/migrate.ts";
import { MIGRATIONS } from "../../../migrations/mod.ts";
import { type DbKind, openTestDatabase, testBothDatabases } from "../../helpers/relay.ts";
import { sharedPostgres } from "../../helpers/postgres.ts";

const ALL = Object.keys(MIGRATIONS);

/**
 * An empty, unmigrated database of `kind`, and how to clean it up. For PGlite this empties a
 * copy of the migrated test template rather than creating a data dir from scratch, which takes
 * seconds; the CLI test covers a brand-new data dir.
 */
async function emptyDatabase(
  kind: DbKind,
): Promise<{ handle: DatabaseHandle; dispose(): Promise<void> }> {
  if (kind === "pglite") {
    const { handle, dataDir } = await openTestDatabase("pglite");
    await sql`drop schema public cascade`.execute(handle.db);
    await sql`create schema public`.execute(handle.db);
    return {
      handle,
      dispose: async () => {
        await handle.close();
        await Deno.remove(dataDir, { recursive: true });
      },
    };
  }
  const handle = openPostgres(await (await sharedPostgres()).createDatabase());
  return { handle, dispose: () => handle.close() };
}

testBothDatabases("migrate() applies every migration to an empty database once", async (kind) => {
  const { handle, dispose } = await emptyDatabase(kind);
  try {
    assert.deepEqual(await appliedMigrations(handle.db), []);
    assert.equal(await isMigrated(handle.db), false);

    const first = await migrate(handle.db);
    assert.deepEqual(first.applied, ALL);
    assert.equal(first.current, ALL.at(-1));
    assert.equal(await isMigrated(handle.db), true);

    const second = await migrate(handle.db);
    assert.deepEqual(second.applied, []);
    assert.equal(second.current, ALL.at(-1));
    assert.deepEqual(await appliedMigrations(handle.db), ALL);
  } finally {
    await dispose();
  }
});

testBothDatabases(
  "migrate() refuses a database with an unknown (newer) migration with SchemaTooNewError",
  async (kind) => {
    const { handle, dataDir } = await openTestDatabase(kind);
    try {
      await sql`insert into sealpost_migrations (name, timestamp)
        values ('9999_from_the_future', now()::text)`.execute(handle.db);
      await assert.rejects(migrate(handle.db), (error: unknown) => {
        assert.ok(error instanceof SchemaTooNewError);
        assert.match(error.message, /newer Sealpost/);
        assert.match(error.message, /9999_from_the_future/);
        assert.ok(!error.message.includes("\n"));
        return true;
      });
      await assert.rejects(assertNotNewer(handle.db), SchemaTooNewError);
      // Nothing was rolled back or re-applied.
      assert.deepEqual(await appliedMigrations(handle.db), [...ALL, "9999_from_the_future"]);
    } finally {
      await handle.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
);

testBothDatabases(
  "migrate() from several connections at once applies each migration exactly once",
  async () => {
    const url = await (await sharedPostgres()).createDatabase();
    const handles = [0, 1, 2, 3].map(() => openPostgres(url, { max: 2 }));
    try {
      const reports = await Promise.all(handles.map((h) => migrate(h.db)));
      const applied = reports.flatMap((r) => r.applied).sort();
      assert.deepEqual(applied, [...ALL].sort(), "every migration applied by exactly one");
      for (const report of reports) assert.equal(report.current, ALL.at(-1));
      for (const h of handles) assert.equal(await isMigrated(h.db), true);
      const rows = await sql<{ n: number }>`select count(*)::int as n from sealpost_migrations`
        .execute(handles[0].db);
      assert.equal(rows.rows[0].n, ALL.length);
    } finally {
      await Promise.all(handles.map((h) => h.close()));
    }
  },
  { only: ["postgres"] },
);

testBothDatabases(
  "migrateTo() reverts with down() to a named migration, and every down() undoes its up()",
  async (kind) => {
    const { handle, dispose } = await emptyDatabase(kind);
    try {
      // Every column of every table, every index and every function: the schema's shape.
      const tables = async () =>
        (await sql<{ t: string }>`
        select table_name || '.' || column_name || ':' || data_type as t
          from information_schema.columns
          where table_schema = 'public' and table_name not like 'sealpost_migrations%'
        union all select 'index ' || indexname from pg_indexes
          where schemaname = 'public' and tablename not like 'sealpost_migrations%'
        union all select 'function ' || routine_name from information_schema.routines
          where routine_schema = 'public'
        order by 1`.execute(handle.db)).rows.map((r) => r.t);
      // The schema after each migration, going up.
      const after: string[][] = [];
      for (const name of ALL) {
        const report = await migrateTo(handle.db, resolveTarget(name));
        assert.deepEqual(report.applied, [name]);
        after.push(await tables());
      }
      // Down one at a time: each step leaves exactly the schema the previous migration made.
      for (let i = ALL.length - 1; i > 0; i--) {
        const target = String(Number(ALL[i - 1].split("_")[0]));
        const report = await migrateTo(handle.db, resolveTarget(target));
        assert.deepEqual(report.reverted, [ALL[i]]);
        assert.equal(report.current, ALL[i - 1]);
        assert.deepEqual(await tables(), after[i - 1], `down() of ${ALL[i]}`);
        assert.equal(await isMigrated(handle.db), false);
      }
      // To 0: nothing left; then all the way up again in one call.
      const none = await migrateTo(handle.db, resolveTarget("0"));
      assert.deepEqual(none.reverted, [ALL[0]]);
      assert.deepEqual(await tables(), []);
      const up = await migrateTo(handle.db, resolveTarget(ALL.at(-1)!));
      assert.deepEqual(up.applied, ALL);
      assert.equal(await isMigrated(handle.db), true);
    } finally {
      await dispose();
    }
  },
);

Deno.test("resolveTarget() takes a number or a name and names the choices otherwise", () => {
  assert.equal(resolveTarget("1"), ALL[0]);
  assert.equal(resolveTarget("0001"), ALL[0]);
  assert.equal(resolveTarget(ALL[1]), ALL[1]);
  assert.equal(resolveTarget("0"), null);
  assert.throws(
    () => resolveTarget("99"),
    /Cannot migrate to '99': expected 0 or one of 1 \(0001_initial\)/,
  );
  assert.throws(() => resolveTarget("latest"), /Cannot migrate to 'latest'/);
});

testBothDatabases(
  "0008 counts memberships made before it as accepted; 0009 keeps senders of earlier messages",
  async (kind) => {
    const { handle, dispose } = await emptyDatabase(kind);
    try {
      await migrateTo(handle.db, "0007_commit_function");
      await sql`
        insert into accounts (id, created_at) values ('acct-a', 1), ('acct-b', 1);
      `.execute(handle.db);
      await sql`insert into devices (id, account_id, cert, created_at, last_seen_at)
        values ('dev-a', 'acct-a', 'c', 1, 1)`.execute(handle.db);
      await sql`insert into groups (id, last_seq, retention_s, created_at)
        values ('g', 1, 60, 1)`.execute(handle.db);
      await sql`insert into group_members (group_id, account_id, role, added_at)
        values ('g', 'acct-a', 'owner', 1), ('g', 'acct-b', 'member', 1)`.execute(handle.db);
      await sql`insert into messages (group_id, seq, sender_account, sender_device, client_id,
          body, created_at) values ('g', 1, 'acct-a', 'dev-a', 'c1', '\\x00', 1)`
        .execute(handle.db);
      await migrate(handle.db);
      const states = await sql<{ account_id: string; state: string }>`
        select account_id, state from group_members order by account_id`.execute(handle.db);
      assert.deepEqual(states.rows, [
        { account_id: "acct-a", state: "accepted" },
        { account_id: "acct-b", state: "accepted" },
      ]);
      const sender = await sql<{ sender_device: string | null }>`
        select sender_device from messages`.execute(handle.db);
      assert.deepEqual(sender.rows, [{ sender_device: "dev-a" }]);
    } finally {
      await dispose();
    }
  },
);

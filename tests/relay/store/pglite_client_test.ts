/**
 * The embedded database in its worker (relay/store/pglite_client.ts, pglite_worker.ts), through
 * the Kysely handle the relay uses: Postgres errors arrive with their fields, an open transaction
 * holds the one connection (others' statements wait for its commit and then see it), a rollback
 * leaves nothing, statements in flight are bounded (53300, which the relay answers 503) but never
 * a transaction's commit (the statements filling the bound may be waiting for it), a
 * transaction that hits a full disk still frees the connection (later statements get 53100), and a
 * new data directory is created (initdb) and then served by a second worker.
 */

import assert from "node:assert/strict";
import { sql } from "kysely";
import { openPglite } from "../../../relay/store/database.ts";
import { MAX_IN_FLIGHT } from "../../../relay/store/pglite_client.ts";
import { isUnavailable } from "../../../relay/errors.ts";
import { mountSmallFs, smallFsUnavailable } from "../../helpers/small_fs.ts";

async function withDb(fn: (db: Awaited<ReturnType<typeof openPglite>>["db"]) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "sealpost-pglite-worker-" });
  const handle = await openPglite(`${dir}/pg`);
  try {
    await sql`create table t (id int primary key, note text)`.execute(handle.db);
    await fn(handle.db);
  } finally {
    await handle.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("PGlite worker: errors keep Postgres's code and fields; a transaction holds the connection until it ends", async () => {
  await withDb(async (db) => {
    await sql`insert into t values (1, 'a')`.execute(db);
    const error = await sql`insert into t values (1, 'b')`.execute(db).catch((e) => e) as
      & Error
      & { code?: string; constraint?: string };
    assert.ok(error instanceof Error);
    assert.equal(error.code, "23505");
    assert.equal(error.constraint, "t_pkey");
    assert.match(error.message, /duplicate key/);

    const order: string[] = [];
    let outside: Promise<number> | undefined;
    await db.transaction().execute(async (trx) => {
      await sql`insert into t values (2, 'in tx')`.execute(trx);
      // Another caller's statement waits for this transaction, then sees its row.
      outside = sql<{ n: number }>`select count(*)::int as n from t`.execute(db).then((r) => {
        order.push("outside");
        return r.rows[0].n;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      await sql`insert into t values (3, 'in tx')`.execute(trx);
      order.push("commit");
    });
    assert.equal(await outside, 3);
    assert.deepEqual(order, ["commit", "outside"]);

    await db.transaction().execute(async (trx) => {
      await sql`insert into t values (4, 'rolled back')`.execute(trx);
      throw new Error("abort");
    }).catch(() => {});
    const rows = await sql<{ id: number }>`select id from t order by id`.execute(db);
    assert.deepEqual(rows.rows.map((r) => r.id), [1, 2, 3]);
    // int8 arrives as a number, as on server Postgres.
    const big = await sql<{ n: number }>`select 9007199254740991::int8 as n`.execute(db);
    assert.equal(big.rows[0].n, Number.MAX_SAFE_INTEGER);
  });
});

Deno.test("PGlite worker: statements in flight are bounded; past the bound they fail with 53300 (503)", async () => {
  await withDb(async (db) => {
    let release = () => {};
    const held = new Promise<void>((resolve) => release = resolve);
    const tx = db.transaction().execute(async (trx) => {
      await sql`select 1`.execute(trx);
      await held;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The transaction holds the worker: every other statement queues.
    const queued = Array.from(
      { length: MAX_IN_FLIGHT + 5 },
      () => sql`select 1`.execute(db).then(() => "ok", (e) => e),
    );
    release();
    await tx;
    const results = await Promise.all(queued);
    const refused = results.filter((r) => r !== "ok");
    assert.ok(refused.length >= 5, `${refused.length} refused`);
    for (const error of refused) {
      assert.equal(error.code, "53300");
      assert.ok(isUnavailable(error));
    }
    assert.ok(results.filter((r) => r === "ok").length >= MAX_IN_FLIGHT - 2);
  });
});

Deno.test("PGlite worker: a transaction still commits when the statements waiting for it fill the bound", async () => {
  await withDb(async (db) => {
    let release = () => {};
    const held = new Promise<void>((resolve) => release = resolve);
    let inserted = () => {};
    const holding = new Promise<void>((resolve) => inserted = resolve);
    const tx = db.transaction().execute(async (trx) => {
      await sql`insert into t values (7, 'held')`.execute(trx);
      inserted();
      await held;
    });
    await holding;
    let refused = 0;
    const queued = Array.from(
      { length: MAX_IN_FLIGHT + 5 },
      () =>
        sql`select 1`.execute(db).then(() => "ok", (e) => {
          refused++;
          return e.code;
        }),
    );
    // Every other statement is in flight, waiting for the transaction: the bound is reached.
    for (let i = 0; i < 1_000 && refused < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(refused, 5);
    release();
    // Its commit must not be refused (and then its rollback), which left the worker waiting
    // for the transaction for ever and every statement in flight with it.
    await tx;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const results = await Promise.race([
      Promise.all(queued),
      new Promise<string>((resolve) => timer = setTimeout(() => resolve("stuck"), 30_000)),
    ]);
    clearTimeout(timer);
    assert.notEqual(results, "stuck");
    assert.equal((results as string[]).filter((r) => r === "ok").length, MAX_IN_FLIGHT);
    const row = await sql<{ note: string }>`select note from t where id = 7`.execute(db);
    assert.equal(row.rows[0]?.note, "held");
  });
});

Deno.test("PGlite worker: a new data directory is made by a throwaway worker, then opens and reopens", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sealpost-pglite-worker-" });
  try {
    const handle = await openPglite(`${dir}/pg`);
    await Deno.stat(`${dir}/pg/PG_VERSION`); // created by the init worker
    await handle.close();
    const again = await openPglite(`${dir}/pg`);
    const rows = await sql<{ one: number }>`select 1 as one`.execute(again.db);
    assert.equal(rows.rows[0].one, 1);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test({
  name:
    "PGlite worker: a transaction that hits a full disk ends, so later statements are answered (53100) instead of waiting for ever",
  ignore: smallFsUnavailable() !== null,
  fn: async () => {
    const fs = await mountSmallFs(120);
    const failures: string[] = [];
    try {
      const handle = await openPglite(`${fs.dir}/pg`, { onFailure: (r) => failures.push(r) });
      try {
        await sql`create table t (id int primary key, note text)`.execute(handle.db);
        await fs.fill(256 * 1024);
        // Pages of incompressible text: the table must grow on disk and cannot.
        const error = await handle.db.transaction().execute(async (trx) => {
          for (let i = 0; i < 400; i++) {
            await sql`insert into t select g + ${i * 100}, string_agg(md5(random()::text), '')
              from generate_series(1, 100) g, generate_series(1, 60) x group by g`.execute(trx);
          }
        }).then(() => null, (e) => e);
        assert.ok(error, "the disk is full: the transaction fails");
        assert.equal(failures.length, 1, "fenced");
        // The transaction's rollback failed too (fenced): the worker must not keep waiting for it.
        const next = await Promise.race([
          sql`select 1`.execute(handle.db).then(() => "ok", (e) => e.code),
          new Promise((resolve) => setTimeout(() => resolve("no answer in 5 s"), 5_000)),
        ]);
        assert.equal(next, "53100");
      } finally {
        await handle.close();
      }
    } finally {
      await fs.unmount();
    }
  },
});

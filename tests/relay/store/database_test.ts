/**
 * relay/store/database.ts: closing a server-Postgres handle is bounded, so a shutdown (and every
 * test's teardown) ends even when a statement never finishes or postgres.js waits on a connection
 * for ever (porsager/postgres#925, seen here as a rare hang in a test's teardown).
 */

import assert from "node:assert/strict";
import { sql } from "kysely";
import { sharedPostgres } from "../../helpers/postgres.ts";
import { dbUnavailable } from "../../helpers/relay.ts";
import { openPostgres } from "../../../relay/store/database.ts";

Deno.test({
  name:
    "closing a Postgres handle with a statement still running ends within the close timeout and fails that statement",
  ignore: dbUnavailable("postgres") !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const handle = openPostgres(await (await sharedPostgres()).createDatabase());
    await sql`select 1`.execute(handle.db);
    // A statement that would hold the connection for 30 s; unbounded, close() waits for it.
    const running = sql`select pg_sleep(30)`.execute(handle.db).then(
      () => "finished",
      (error: Error) => `failed: ${error.message}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Raced against a bound of its own, so a close() that never ends fails the test, not the run.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const started = Date.now();
    const closed = await Promise.race([
      handle.close().then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 20_000)),
    ]);
    clearTimeout(timer);
    assert.ok(closed, "close() did not end within 20 s");
    assert.ok(Date.now() - started < 15_000, `close() took ${Date.now() - started} ms`);
    assert.match(await running, /^failed: /, "the cut statement is failed, not left hanging");
  },
});

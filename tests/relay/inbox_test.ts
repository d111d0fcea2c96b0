/**
 * relay/inbox.ts: long-poll waiters are woken by a committed message in their groups, and all of
 * them when the bus may have missed events (here: its listening connection cut by Postgres).
 */

import assert from "node:assert/strict";
import { PostgresBus } from "../../relay/bus/bus_postgres.ts";
import { silentLogger } from "../../relay/base/log.ts";
import { InboxWaiters } from "../../relay/inbox.ts";
import { sharedPostgres } from "../helpers/postgres.ts";
import { dbUnavailable, openTestDatabase } from "../helpers/relay.ts";

Deno.test({
  name: "InboxWaiters wakes a waiter on its group's messages and every waiter after a bus gap",
  ignore: dbUnavailable("postgres") !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { handle, databaseUrl } = await openTestDatabase("postgres");
    const bus = await PostgresBus.start({
      url: databaseUrl!,
      db: handle.db,
      instanceId: "inbox-test",
      log: silentLogger,
    });
    const waiters = new InboxWaiters(bus);
    try {
      const group = "g".repeat(22);
      const mine = waiters.wait("acct", [group], 30_000);
      const other = waiters.wait("acct", ["o".repeat(22)], 30_000);
      bus.publish({ kind: "messages", group, messages: [] });
      const first = await Promise.race([
        mine.woken.then(() => "mine"),
        other.woken.then(() => "other"),
      ]);
      assert.equal(first, "mine");
      // The listener is cut: after it reconnects the bus reports a gap, and the other waiter
      // reads again instead of sleeping through what may have been committed meanwhile.
      const t0 = Date.now();
      const pg = await sharedPostgres();
      const dbName = new URL(databaseUrl!).pathname.slice(1);
      const killed = await pg.psql(
        `select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name like 'sealpost-listen%' and datname = '${dbName}'`,
      );
      assert.equal(killed.trim(), "1");
      await other.woken;
      assert.ok(Date.now() - t0 < 20_000, "woken by the gap, not by its 30 s timeout");
    } finally {
      waiters.close();
      await bus.close();
      await handle.close();
    }
  },
});

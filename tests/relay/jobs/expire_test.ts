/**
 * Tests of relay/jobs/expire.ts and the sweeper around it: expired messages are never served and are
 * deleted in bounded batches along the `expires_at` index, without blocking sends; one sweeper
 * runs at a time across instances; `sealpost sweep --dry-run` counts and `sealpost sweep`
 * removes, with short real durations. PGlite and Postgres.
 */

import assert from "node:assert/strict";
import { sql } from "kysely";
import { cipher, newDevice } from "../../helpers/accounts.ts";
import { startTestRelay, testBothDatabases } from "../../helpers/relay.ts";
import { expireMessages } from "../../../relay/jobs/expire.ts";

const ROWS = 100_000;

testBothDatabases(
  `a sweep over ${ROWS} expired messages runs in bounded batches without blocking sends`,
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const alice = await newDevice(t.url);
      const group = await alice.api.createGroup();
      const past = t.clock.now() - 60_000;
      // 100,000 messages of 200 B that expired a minute ago, straight into the table.
      await sql`
        insert into messages (group_id, seq, sender_account, sender_device, client_id, body,
                              created_at, expires_at)
        select ${group.id}, s, ${alice.account}, ${alice.device}, 'bulk-' || s,
               decode(repeat('ab', 200), 'hex'), ${past - 1000}::bigint,
               ${past}::bigint + (s % 997)
        from generate_series(1, ${ROWS}) as s`.execute(t.database.db);
      await sql`update groups set last_seq = ${ROWS} where id = ${group.id}`.execute(
        t.database.db,
      );
      assert.deepEqual((await alice.api.messages(group.id)).messages, [], "never served");

      if (db === "postgres") {
        await sql`analyze messages`.execute(t.database.db);
        const plan = await sql<{ "QUERY PLAN": string }>`
          explain select group_id, seq from messages where expires_at <= ${t.clock.now()}
          order by expires_at limit 5000`.execute(t.database.db);
        assert.match(plan.rows.map((r) => r["QUERY PLAN"]).join("\n"), /messages_expires_idx/);
      }

      // Send steadily while the sweep runs; every send must be accepted, and promptly.
      const latencies: number[] = [];
      let sweeping = true;
      let failed: unknown = null;
      const sender = (async () => {
        let i = 0;
        while (sweeping || i < 5) {
          const started = performance.now();
          const sent = await alice.api.send(group.id, {
            body: cipher(200),
            client_id: `live-${i++}`,
          });
          latencies.push(performance.now() - started);
          assert.equal(sent.status, 201);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })().catch((error) => (failed = error));
      const batches: number[] = [];
      const started = performance.now();
      const removed = await expireMessages(t.relay.deps, t.clock.now(), {
        onBatch: (n) => batches.push(n),
      });
      const ms = performance.now() - started;
      sweeping = false;
      await sender;
      if (failed) throw failed;

      assert.equal(removed, ROWS);
      const size = db === "postgres" ? 5000 : 1000;
      assert.equal(batches.length, ROWS / size + 1, "full batches, then an empty one");
      assert.ok(batches.every((n) => n <= size));
      const left = await sql<{ n: number }>`select count(*)::int as n from messages`.execute(
        t.database.db,
      );
      assert.equal(left.rows[0].n, latencies.length, "only the live messages are left");
      latencies.sort((a, b) => a - b);
      const p50 = latencies[Math.floor(latencies.length / 2)];
      const max = latencies[latencies.length - 1];
      console.log(
        `[${db}] swept ${ROWS} in ${Math.round(ms)} ms (${batches.length} batches); ` +
          `${latencies.length} sends meanwhile: p50 ${p50.toFixed(1)} ms, max ${max.toFixed(1)} ms`,
      );
      // Far below the sweep's own duration: sends interleave with the batches.
      assert.ok(max < Math.max(1000, ms / 4), `a send waited ${max} ms during a ${ms} ms sweep`);
      assert.ok(latencies.length >= 5);
      const page = await alice.api.messages(group.id, ROWS);
      assert.equal(page.messages.length, Math.min(100, latencies.length));
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "one sweeper at a time: a run while another holds the lock is skipped",
  async (db) => {
    const t = await startTestRelay({ db });
    try {
      const [first, second] = await Promise.all([
        t.relay.sweeper.runOnce(),
        t.relay.sweeper.runOnce(),
      ]);
      assert.ok(first, "the first run ran");
      assert.equal(second, null, "the overlapping run was skipped");
      if (db === "postgres") {
        // Another instance (here: another connection) holding the lock makes this one skip.
        const conn = await t.database.sql!.reserve();
        try {
          await conn`select pg_advisory_lock(${0x7377656570})`;
          assert.equal(await t.relay.sweeper.runOnce(), null);
          await conn`select pg_advisory_unlock(${0x7377656570})`;
        } finally {
          conn.release();
        }
        assert.ok(await t.relay.sweeper.runOnce());
      }
    } finally {
      await t.stop();
    }
  },
);

Deno.test({
  name: "sealpost sweep --dry-run counts, sealpost sweep removes (short real durations)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "sealpost-sweep-" });
    try {
      const t = await startTestRelay({ dataDir });
      const alice = await newDevice(t.url);
      const group = await alice.api.createGroup();
      const keep = await alice.api.send(group.id, { body: cipher() });
      for (let i = 0; i < 3; i++) await alice.api.send(group.id, { body: cipher(), ttl_s: 1 });
      await t.stop();
      await new Promise((resolve) => setTimeout(resolve, 1100)); // real time: the TTL passes

      const run = async (...args: string[]) => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL("../../../main.ts", import.meta.url).pathname,
            "sweep",
            ...args,
          ],
          env: { SEALPOST_DATA_DIR: dataDir, SEALPOST_LOG_LEVEL: "warn" },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout);
        assert.ok(out.success, text + new TextDecoder().decode(out.stderr));
        return text;
      };
      const dry = await run("--dry-run");
      assert.match(dry, /^would remove 3 expired messages$/m);
      assert.match(dry, /^would remove 0 blobs/m);
      const real = await run();
      assert.match(real, /^removed 3 expired messages$/m);
      assert.match(await run("--dry-run"), /^would remove 0 expired messages$/m);

      const again = await startTestRelay({ dataDir });
      try {
        const rows = await again.database.db.selectFrom("messages").select("seq").execute();
        assert.deepEqual(rows.map((r) => r.seq), [keep.seq]);
        const audit = await again.database.db.selectFrom("audit_log").select("detail")
          .where("action", "=", "sweep").execute();
        assert.equal(audit.length, 1, "the dry runs wrote no audit rows");
        assert.equal(JSON.parse(audit[0].detail).expiredMessages, 3);
      } finally {
        await again.stop();
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

testBothDatabases(
  "the sweeper erases client addresses from audit-log rows older than their retention",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_AUDIT_ADDRESS_RETENTION: "1h" } });
    try {
      const now = t.clock.now();
      const rows = [
        { at: now - 2 * 3_600_000, actor: "admin:1a2b3c4d@203.0.113.7", action: "admin.login" },
        { at: now - 60_000, actor: "admin:5e6f7a8b@198.51.100.9", action: "admin.login" },
      ];
      for (const row of rows) {
        const ip = row.actor.split("@")[1];
        await t.database.db.insertInto("audit_log")
          .values({ ...row, detail: JSON.stringify({ ip, session: "s" }) }).execute();
      }
      const report = await t.relay.sweeper.runOnce();
      assert.equal(report?.auditAddressesErased, 1);
      const after = await t.database.db.selectFrom("audit_log").select(["actor", "detail"])
        .where("action", "=", "admin.login").orderBy("at").execute();
      assert.deepEqual(after, [
        { actor: "admin:1a2b3c4d", detail: JSON.stringify({ session: "s" }) },
        { actor: "admin:5e6f7a8b@198.51.100.9", detail: rows[1] && after[1].detail },
      ]);
      assert.ok(after[1].detail.includes("198.51.100.9"), "a recent row keeps its address");
      const text = JSON.stringify(
        await t.database.db.selectFrom("audit_log").selectAll().execute(),
      );
      assert.ok(!text.includes("203.0.113.7"), "the old address is gone from every row");
      assert.equal((await t.relay.sweeper.runOnce())?.auditAddressesErased, 0, "done once");
    } finally {
      await t.stop();
    }
  },
);

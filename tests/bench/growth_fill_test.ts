/**
 * Tests of bench/growth_fill.ts: the growth scenario's SQL fill writes rows the relay's schema and
 * read path accept, with the invariants a real table has — `seq` gap-free per group from 1 and
 * `groups.last_seq` equal to the highest, `expires_at` 30 days after `created_at` over the month
 * before the fill, rows in time order, and the catch-up group's rows interleaved with the filler's
 * at the end of the table. Postgres (the scenario's database); a small fill.
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { CATCHUP_GROUP, existingFill, fill, MONTH_MS } from "../../bench/growth_fill.ts";
import { readPage } from "../../relay/messages.ts";
import { dbUnavailable, openTestDatabase } from "../helpers/relay.ts";

Deno.test({
  name: "fill() writes gap-free groups, a month of expiries and an interleaved catch-up backlog",
  ignore: dbUnavailable("postgres") !== null,
  async fn() {
    const { handle, databaseUrl } = await openTestDatabase("postgres");
    const sql = postgres(databaseUrl!, { max: 1, onnotice: () => {} });
    try {
      assert.equal(await existingFill(sql), null);
      const now = Date.now();
      await fill(sql, { messages: 5000, groups: 37, catchup: 300, now });
      assert.deepEqual(await existingFill(sql), { groups: 37, messages: 5300 });

      // Every group: seq 1..last_seq, nothing missing, nothing beyond.
      const groups = await sql.unsafe(
        `select g.id, g.last_seq::bigint as last, count(m.seq)::bigint as n,
                coalesce(min(m.seq), 0)::bigint as lo, coalesce(max(m.seq), 0)::bigint as hi
         from groups g left join messages m on m.group_id = g.id group by g.id, g.last_seq`,
      );
      assert.equal(groups.length, 38);
      for (const g of groups) {
        assert.equal(Number(g.n), Number(g.last), `${g.id}: rows = last_seq`);
        assert.equal(Number(g.hi), Number(g.last), `${g.id}: highest seq = last_seq`);
        assert.equal(Number(g.lo), 1, `${g.id}: starts at 1`);
      }
      assert.equal(Number(groups.find((g) => g.id === CATCHUP_GROUP)!.last), 300);

      // A month of rows in time order, each expiring 30 days after it was created.
      const [span] = await sql.unsafe(
        `select min(created_at)::bigint as first, max(created_at)::bigint as last,
                bool_and(expires_at - created_at = ${MONTH_MS}) as month,
                count(distinct length(client_id)) as id_lengths, min(octet_length(body)) as body
         from messages`,
      );
      assert.ok(Number(span.first) >= now - MONTH_MS && Number(span.last) <= now);
      assert.ok(Number(span.last) - Number(span.first) > MONTH_MS * 0.99);
      assert.equal(span.month, true);
      assert.equal(Number(span.id_lengths), 1, "client_ids of one length (UUIDs)");
      assert.equal(Number(span.body), 342);
      const order = await sql.unsafe(
        `select group_id = '${CATCHUP_GROUP}' as catchup, created_at::bigint as at
         from messages order by ctid`,
      );
      for (let i = 1; i < order.length; i++) {
        assert.ok(Number(order[i].at) >= Number(order[i - 1].at), `row ${i} is in time order`);
      }
      // The catch-up rows: only in the tail (the last 10 × 300 filler rows and themselves), and
      // spread through it, never in one run.
      const first = order.findIndex((r) => r.catchup);
      assert.equal(first, 5000 - 3000, "the backlog starts where the tail starts");
      let longestRun = 0;
      for (let i = first, run = 0; i < order.length; i++) {
        run = order[i].catchup ? run + 1 : 0;
        longestRun = Math.max(longestRun, run);
      }
      assert.equal(longestRun, 1, "one catch-up row at a time between filler rows");

      // The relay's own read path serves them.
      const page = await readPage(handle.db, CATCHUP_GROUP, "reader", 0, 100, now);
      assert.deepEqual(
        page.messages.map((m) => m.seq),
        Array.from({ length: 100 }, (_, i) => i + 1),
      );
      assert.equal(page.last_seq, 300);
      assert.equal(page.has_more, true);
    } finally {
      await sql.end({ timeout: 5 });
      await handle.close();
    }
  },
});

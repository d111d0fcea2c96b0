import assert from "node:assert/strict";
import { expiryOf } from "../../relay/persist.ts";
import { cipher, newDevice } from "../helpers/accounts.ts";
import { startTestRelay, testBothDatabases } from "../helpers/relay.ts";

Deno.test("expiryOf() caps ttl by retention and by max ttl; forever is null", () => {
  assert.equal(expiryOf(0, undefined, 60, null), 60_000);
  assert.equal(expiryOf(0, 10, 60, null), 10_000);
  assert.equal(expiryOf(0, 100, 60, null), 60_000);
  assert.equal(expiryOf(0, 100, 0, 30_000), 30_000);
  assert.equal(expiryOf(0, undefined, 0, null), null);
  assert.equal(expiryOf(0, 5, 0, null), 5_000);
});

testBothDatabases(
  "send() assigns gap-free seq under concurrency; a reader following after=<highest> never misses one",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const senders = await Promise.all(
        Array.from({ length: 6 }, (_, i) => newDevice(t.url, `sender ${i}`)),
      );
      const [owner] = senders;
      const group = await owner.api.createGroup({
        members: senders.slice(1).map((s) => s.account),
      });
      const perSender = 40;
      const total = perSender * senders.length;

      // A reader that polls continuously, always from the highest seq it has seen.
      const seen: number[] = [];
      let highest = 0;
      let done = false;
      const reader = (async () => {
        for (let rounds = 0; rounds < 20_000 && !done; rounds++) {
          const page = await owner.api.messages(group.id, highest, 1000);
          for (const m of page.messages) {
            assert.equal(m.seq, highest + 1, `reader saw ${m.seq} after ${highest}: a gap`);
            highest = m.seq;
            seen.push(m.seq);
          }
          if (highest >= total) return;
          await new Promise((r) => setTimeout(r, 2));
        }
      })();

      const results = await Promise.all(senders.map(async (s) => {
        const mine: number[] = [];
        // Each sender keeps several sends in flight at once.
        for (let batch = 0; batch < perSender; batch += 8) {
          const sends = [];
          for (let i = batch; i < Math.min(perSender, batch + 8); i++) {
            sends.push(s.api.send(group.id, { body: cipher(64), client_id: `m${i}` }));
          }
          for (const r of await Promise.all(sends)) mine.push(r.seq!);
        }
        return mine;
      }));
      await reader;
      done = true;
      const all = results.flat().sort((a, b) => a - b);
      assert.deepEqual(
        all,
        Array.from({ length: total }, (_, i) => i + 1),
        "every seq 1..N assigned once",
      );
      assert.deepEqual(seen, all, "the reader saw every message in order");
      const page = await owner.api.messages(group.id, 0, 1000);
      assert.equal(page.last_seq, total);
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "send() with the same client_id in flight at once stores one message",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const alice = await newDevice(t.url);
      const group = await alice.api.createGroup();
      const body = cipher();
      const results = await Promise.all(
        Array.from({ length: 10 }, () => alice.api.send(group.id, { body, client_id: "same" })),
      );
      assert.deepEqual(new Set(results.map((r) => r.seq)), new Set([1]));
      assert.equal(results.filter((r) => r.status === 201).length, 1);
      assert.equal((await alice.api.messages(group.id)).last_seq, 1);
    } finally {
      await t.stop();
    }
  },
);

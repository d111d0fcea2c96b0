import assert from "node:assert/strict";
import {
  messageFrame,
  messageJson,
  readPage,
  readRanges,
  readReplayPage,
  type StoredMessage,
} from "../../relay/messages.ts";
import { sql } from "kysely";
import { cipher, newDevice } from "../helpers/accounts.ts";
import { startTestRelay, testBothDatabases } from "../helpers/relay.ts";

testBothDatabases(
  "bodies read back (encoded by Postgres) are exactly the base64url sent, at every length",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const alice = await newDevice(t.url);
      const group = await alice.api.createGroup();
      // Empty, every length mod 3 (padding), around base64's 76-character line breaks, and large.
      const sizes = [0, 1, 2, 3, 4, 5, 56, 57, 58, 59, 114, 1000, 4097, 65536];
      const bodies = sizes.map((n) => cipher(n));
      for (const [i, body] of bodies.entries()) {
        await alice.api.send(group.id, { body, client_id: `b${i}` });
      }
      const page = await readPage(t.database.db, group.id, alice.device, 0, 100, t.clock.now());
      assert.deepEqual(page.messages.map((m) => m.body), bodies);
      const ranges = await readRanges(t.database.db, [{ group: group.id, from: 1, to: 100 }]);
      assert.deepEqual(ranges.map((m) => m.body), bodies);
      // The replay's texts, built by Postgres, carry the same bodies as the rows.
      const replay = await readReplayPage(
        t.database.db,
        group.id,
        alice.device,
        0,
        100,
        t.clock.now(),
      );
      assert.deepEqual(replay.texts, page.messages.map(messageJson));
      assert.deepEqual(replay.texts.map((x) => JSON.parse(x).body), bodies);
      const http = await alice.api.messages(group.id, 0, 100);
      assert.deepEqual(http.messages.map((m) => m.body), bodies);
    } finally {
      await t.stop();
    }
  },
);

Deno.test("messageFrame and messageJson (built by concatenation) are the JSON of the message", () => {
  const base: StoredMessage = {
    group: "g".repeat(22),
    seq: 42,
    from: { account: "a".repeat(43), device: "d".repeat(43) },
    created_at: 1_796_000_000_000,
    expires_at: null,
    body: cipher(100),
  };
  const cases: StoredMessage[] = [
    base,
    { ...base, expires_at: 1_796_000_600_000 },
    { ...base, from: null },
    { ...base, body: "" },
    { ...base, blob: { id: "blob_1-x", size: 123_456 } },
    { ...base, to: ["d".repeat(43), "e".repeat(43)] },
    { ...base, blob: { id: "b", size: 0 }, to: [] },
    // Ids are escaped even though validation never lets such characters in.
    { ...base, group: 'q"\\\n\u2028', from: { account: "\u0000", device: "é" } },
  ];
  for (const message of cases) {
    assert.equal(messageJson(message), JSON.stringify(message));
    assert.equal(messageFrame(message), JSON.stringify({ t: "msg", ...message }));
  }
});

testBothDatabases(
  "replay pages: Postgres writes each message's JSON exactly as messageJson does, pages follow each other, visibility and expiry hold",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      const now = t.clock.now();
      const bodies = [1, 2, 3, 57, 58, 300, 4097].map((n) => cipher(n));
      // Rows of every shape, written straight into the table: sealed (no sender), a blob, `to`
      // (for bob, for someone else, empty), an expiry, an expired one.
      const rows = bodies.map((body, i) => ({
        seq: i + 1,
        account: i === 2 ? null : alice.account,
        device: i === 2 ? null : alice.device,
        body,
        blob: i === 3 ? ["blob-id_1", 4096] as const : null,
        to: i === 4 ? [bob.device] : i === 5 ? ["x".repeat(43)] : i === 6 ? [] : null,
        expires: i === 1 ? now + 60_000 : i === 0 ? now - 1 : null,
      }));
      for (const r of rows) {
        await sql`
          insert into messages (group_id, seq, sender_account, sender_device, client_id, body,
                                blob_id, blob_size, to_devices, created_at, expires_at)
          values (${group.id}, ${r.seq}, ${r.account}, ${r.device}, ${"c" + r.seq},
                  decode(${r.body.replaceAll("-", "+").replaceAll("_", "/")} ||
                         repeat('=', (4 - length(${r.body}) % 4) % 4), 'base64'),
                  ${r.blob?.[0] ?? null}, ${r.blob?.[1] ?? null}, ${r.to}, ${now + r.seq},
                  ${r.expires})`.execute(t.database.db);
      }
      await sql`update groups set last_seq = ${rows.length} where id = ${group.id}`
        .execute(t.database.db);
      // Expired (1) is for nobody; targeted at someone else (6) or at no one (7) only for alice.
      const seen = { [bob.device]: [2, 3, 4, 5], [alice.device]: [2, 3, 4, 5, 6, 7] };
      for (const [device, seqs] of Object.entries(seen)) {
        const page = await readPage(t.database.db, group.id, device, 0, 100, now);
        assert.deepEqual(page.messages.map((m) => m.seq), seqs);
        assert.deepEqual(page.messages.map((m) => m.body), seqs.map((seq) => bodies[seq - 1]));
        const replay = await readReplayPage(t.database.db, group.id, device, 0, 100, now);
        assert.deepEqual(replay.texts, page.messages.map(messageJson));
        assert.deepEqual(replay.last, seqs.at(-1));
        assert.deepEqual(replay.last_seq, 7);
        assert.equal(replay.has_more, false);
      }
      const first = await readReplayPage(t.database.db, group.id, bob.device, 0, 2, now);
      assert.deepEqual(first.texts.map((x) => JSON.parse(x).seq), [2, 3]);
      assert.equal(first.has_more, true);
      const next = await readReplayPage(t.database.db, group.id, bob.device, first.last, 2, now);
      assert.deepEqual(next.texts.map((x) => JSON.parse(x).seq), [4, 5]);
      const end = await readReplayPage(t.database.db, group.id, bob.device, 5, 2, now);
      assert.deepEqual(end, { texts: [], last: 5, last_seq: 7, has_more: false });
      // A page also stops once its bodies pass the byte bound; the first message always comes.
      const small = await readReplayPage(t.database.db, group.id, bob.device, 0, 100, now, 60);
      assert.deepEqual(small.texts.map((x) => JSON.parse(x).seq), [2, 3, 4]);
      assert.equal(small.has_more, true, "2 + 3 + 57 body bytes come before seq 5: past 60");
      const big = await readReplayPage(t.database.db, group.id, alice.device, 5, 100, now, 1);
      assert.deepEqual(big.texts.map((x) => JSON.parse(x).seq), [6]);
      assert.equal(big.has_more, true);
      const none = await readReplayPage(t.database.db, "n".repeat(22), bob.device, 0, 2, now);
      assert.deepEqual(none, { texts: [], last: 0, last_seq: 0, has_more: false });
    } finally {
      await t.stop();
    }
  },
);

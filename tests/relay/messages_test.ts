import assert from "node:assert/strict";
import {
  messageFrame,
  messageJson,
  readPage,
  readRanges,
  type StoredMessage,
} from "../../relay/messages.ts";
import { cipher, newDevice } from "../helpers/accounts.ts";
import { startTestRelay, testBothDatabases } from "../helpers/relay.ts";

testBothDatabases(
  "bodies read back (encoded by Postgres) are exactly the base64url sent, at every length",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const alice = await newDevice(t.url);
      const group = await alice.api.createGroup();
      // Every length mod 3 (padding), around base64's 76-character line breaks, and large.
      const sizes = [1, 2, 3, 4, 5, 56, 57, 58, 59, 114, 1000, 4097, 65536];
      const bodies = sizes.map((n) => cipher(n));
      for (const [i, body] of bodies.entries()) {
        await alice.api.send(group.id, { body, client_id: `b${i}` });
      }
      const page = await readPage(t.database.db, group.id, alice.device, 0, 100, t.clock.now());
      assert.deepEqual(page.messages.map((m) => m.body), bodies);
      const ranges = await readRanges(t.database.db, [{ group: group.id, from: 1, to: 100 }]);
      assert.deepEqual(ranges.map((m) => m.body), bodies);
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

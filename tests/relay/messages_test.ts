import assert from "node:assert/strict";
import { readPage, readRanges } from "../../relay/messages.ts";
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

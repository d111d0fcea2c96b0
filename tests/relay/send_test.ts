import assert from "node:assert/strict";
import { SealpostError } from "../../client/mod.ts";
import { cipher, newAccount, newDevice } from "../helpers/accounts.ts";
import { startTestRelay, testBothDatabases } from "../helpers/relay.ts";

async function rejects(promise: Promise<unknown>, status: number, code: string) {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof SealpostError, `expected SealpostError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.status, status, e.message);
    return true;
  });
}

testBothDatabases(
  "send() stores, numbers and serves messages; client_id is idempotent",
  async (db) => {
    const t = await startTestRelay({ db });
    try {
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      assert.equal(group.members.length, 2);
      const body = cipher(100);
      const first = await alice.api.send(group.id, { body, client_id: "c1" });
      assert.equal(first.status, 201);
      assert.equal(first.seq, 1);
      const again = await alice.api.send(group.id, { body, client_id: "c1" });
      assert.equal(again.status, 200);
      assert.equal(again.seq, 1);
      assert.equal(again.created_at, first.created_at);
      const second = await bob.api.send(group.id, { body: cipher(), client_id: "c1" });
      assert.equal(second.seq, 2, "client_id is per sending device");
      const page = await bob.api.messages(group.id, 0);
      assert.equal(page.last_seq, 2);
      assert.equal(page.has_more, false);
      assert.deepEqual(page.messages.map((m) => m.seq), [1, 2]);
      assert.equal(page.messages[0].body, body);
      assert.deepEqual(page.messages[0].from, { account: alice.account, device: alice.device });
      assert.equal(page.messages[0].expires_at, first.created_at! + 30 * 86400_000);
      const paged = await bob.api.messages(group.id, 0, 1);
      assert.equal(paged.has_more, true);
      assert.equal(paged.messages.length, 1);
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "send() rejects non-members, oversize bodies and bad input without consuming a seq",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_MAX_MESSAGE_BYTES: "1KiB" } });
    try {
      const alice = await newDevice(t.url);
      const eve = await newDevice(t.url);
      const group = await alice.api.createGroup();
      await rejects(eve.api.send(group.id, { body: cipher() }), 404, "not_found");
      await rejects(eve.api.messages(group.id), 404, "not_found");
      await rejects(eve.api.group(group.id), 404, "not_found");
      await rejects(alice.api.send(group.id, { body: cipher(1025) }), 413, "too_large");
      await rejects(alice.api.send(group.id, { body: "not base64!" }), 400, "invalid_request");
      await rejects(
        alice.api.send(group.id, { body: cipher(), ttl_s: -1 }),
        400,
        "invalid_request",
      );
      await rejects(
        alice.api.send(group.id, { body: cipher(), client_id: "x".repeat(65) }),
        400,
        "invalid_request",
      );
      await rejects(
        alice.api.request("POST", `/v1/groups/${group.id}/messages`, {}),
        400,
        "invalid_request",
      );
      await rejects(alice.api.messages(group.id, -1), 400, "invalid_request");
      await rejects(alice.api.messages("nope"), 404, "not_found");
      const ok = await alice.api.send(group.id, { body: cipher(1024) });
      assert.equal(ok.seq, 1, "no rejected send consumed a seq");
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "ttl_s is capped by retention and expired messages are never served",
  async (db) => {
    const t = await startTestRelay({ db });
    try {
      const alice = await newDevice(t.url);
      const group = await alice.api.createGroup({ retention_s: 3600 });
      assert.equal(group.retention_s, 3600);
      const capped = await alice.api.send(group.id, { body: cipher(), ttl_s: 999_999 });
      assert.equal(capped.expires_at, capped.created_at! + 3600_000);
      const short = await alice.api.send(group.id, { body: cipher(), ttl_s: 10 });
      assert.equal(short.expires_at, short.created_at! + 10_000);
      t.clock.advance(11_000);
      const page = await alice.api.messages(group.id);
      assert.deepEqual(page.messages.map((m) => m.seq), [1]);
      assert.equal(page.last_seq, 2);
      assert.deepEqual((await alice.api.inbox()).map((m) => m.seq), [1]);
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "targeted messages are visible only to their devices and the sender",
  async (db) => {
    const t = await startTestRelay({ db });
    try {
      const [a1, a2] = await newAccount(t.url, 2);
      const bob = await newDevice(t.url);
      const group = await a1.api.createGroup({ members: [bob.account] });
      await a1.api.send(group.id, { body: cipher(), to: [bob.device] });
      await a1.api.send(group.id, { body: cipher() });
      assert.deepEqual((await bob.api.messages(group.id)).messages.map((m) => m.seq), [1, 2]);
      assert.deepEqual((await a1.api.messages(group.id)).messages.map((m) => m.seq), [1, 2]);
      const other = await a2.api.messages(group.id);
      assert.deepEqual(other.messages.map((m) => m.seq), [2]);
      assert.equal(other.last_seq, 2);
      assert.deepEqual((await a2.api.inbox()).map((m) => m.seq), [2]);
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "inbox returns messages after the cursor; ack moves it forward only",
  async (db) => {
    const t = await startTestRelay({ db });
    try {
      const alice = await newDevice(t.url);
      const g1 = await alice.api.createGroup();
      const g2 = await alice.api.createGroup();
      for (let i = 0; i < 3; i++) await alice.api.send(g1.id, { body: cipher() });
      await alice.api.send(g2.id, { body: cipher() });
      assert.equal((await alice.api.inbox()).length, 4);
      await alice.api.ack({ [g1.id]: 2 });
      await alice.api.ack({ [g1.id]: 1 });
      await alice.api.ack({ [g2.id]: 99 });
      const left = await alice.api.inbox();
      assert.deepEqual(left.map((m) => [m.group, m.seq]), [[g1.id, 3]]);
      const groups = await alice.api.groups();
      assert.equal(groups.find((g) => g.id === g1.id)!.cursor, 2);
      assert.equal(groups.find((g) => g.id === g2.id)!.cursor, 1, "never past last_seq");
      await rejects(alice.api.ack({ ["A".repeat(22)]: 1 }), 404, "not_found");
      await rejects(alice.api.ack({ [g1.id]: -1 }), 400, "invalid_request");
      // long-poll wakes on a new message
      await alice.api.ack({ [g1.id]: 3 });
      const started = Date.now();
      const polling = alice.api.inbox({ wait: 10 });
      setTimeout(() => alice.api.send(g2.id, { body: cipher() }), 200);
      const got = await polling;
      assert.deepEqual(got.map((m) => m.seq), [2]);
      assert.ok(Date.now() - started < 5000);
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "ephemeral messages reach only connected subscribers and are never stored",
  async (db) => {
    const t = await startTestRelay({ db });
    try {
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      const none = await alice.api.send(group.id, { body: cipher(), ephemeral: true });
      assert.equal(none.status, 202);
      assert.equal(none.delivered, 0);
      const { RawSocket } = await import("../helpers/ws.ts");
      const ws = await RawSocket.authed(t.wsUrl, bob.token);
      ws.send({ t: "sub", groups: null });
      await ws.next((f) => f.t === "synced");
      const one = await alice.api.send(group.id, { body: "aGk", ephemeral: true });
      assert.equal(one.delivered, 1);
      const eph = await ws.next((f) => f.t === "eph");
      assert.deepEqual(eph, {
        t: "eph",
        group: group.id,
        from: { account: alice.account, device: alice.device },
        body: "aGk",
      });
      assert.equal((await bob.api.messages(group.id)).last_seq, 0);
      ws.close();
      await ws.closed;
    } finally {
      await t.stop();
    }
  },
);

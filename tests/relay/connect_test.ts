import assert from "node:assert/strict";
import { cipher, newAccount, newDevice } from "../helpers/accounts.ts";
import { startTestRelay, testBothDatabases } from "../helpers/relay.ts";
import { RawSocket } from "../helpers/ws.ts";
import { proveNonce } from "../../client/mod.ts";

testBothDatabases(
  "handleSocket() says hello, authenticates by token or signature, answers ping",
  async (db) => {
    const t = await startTestRelay({ db });
    try {
      const alice = await newDevice(t.url);
      const ws = await RawSocket.open(t.wsUrl);
      assert.equal(ws.hello.version, 1);
      assert.equal(typeof ws.hello.nonce, "string");
      assert.equal((ws.hello.limits as Record<string, number>).max_message_bytes, 65536);
      ws.send({ t: "auth", token: alice.token });
      assert.deepEqual(await ws.next(), {
        t: "ready",
        account: alice.account,
        device: alice.device,
      });
      ws.send({ t: "ping" });
      assert.deepEqual(await ws.next(), { t: "pong" });
      ws.close();

      const bySig = await RawSocket.open(t.wsUrl);
      const sig = await proveNonce(alice.identity.device, String(bySig.hello.nonce));
      bySig.send({ t: "auth", device: alice.device, sig });
      assert.equal((await bySig.next()).t, "ready");
      bySig.close();
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "handleSocket() closes 4001 for a bad first frame, bad token, unknown device or no auth in time",
  async (db) => {
    const t = await startTestRelay({ db, overrides: { authTimeoutMs: 300 } });
    try {
      const alice = await newDevice(t.url);
      const notAuth = await RawSocket.open(t.wsUrl);
      notAuth.send({ t: "ping" });
      assert.equal((await notAuth.closed).code, 4001);

      const garbage = await RawSocket.open(t.wsUrl);
      garbage.send("{nope");
      assert.equal((await garbage.closed).code, 4001);

      const badToken = await RawSocket.open(t.wsUrl);
      badToken.send({ t: "auth", token: "bogus" });
      assert.equal((await badToken.closed).code, 4001);

      const badSig = await RawSocket.open(t.wsUrl);
      const otherNonceSig = await proveNonce(alice.identity.device, "some-other-nonce");
      badSig.send({ t: "auth", device: alice.device, sig: otherNonceSig });
      assert.equal((await badSig.closed).code, 4001);

      const stranger = await (await import("../../client/mod.ts")).createDeviceIdentity();
      const unknown = await RawSocket.open(t.wsUrl);
      unknown.send({
        t: "auth",
        device: stranger.device.id,
        sig: await proveNonce(stranger.device, String(unknown.hello.nonce)),
      });
      assert.equal((await unknown.closed).code, 4001);

      const silent = await RawSocket.open(t.wsUrl);
      assert.equal((await silent.closed).code, 4001);
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "handleSocket() answers bad frames with error frames and stays usable; 1009 for huge frames",
  async (db) => {
    const t = await startTestRelay({
      db,
      env: { SEALPOST_MAX_MESSAGE_BYTES: "1KiB", SEALPOST_RATE_SEND: "2/min" },
      overrides: { sendBurst: 3 },
    });
    try {
      const alice = await newDevice(t.url);
      const group = await alice.api.createGroup();
      const ws = await RawSocket.authed(t.wsUrl, alice.token);
      ws.send("not json");
      assert.equal((await ws.next()).code, "invalid_request");
      ws.send({ t: "launch", ref: 1 });
      assert.deepEqual(await ws.next(), {
        t: "error",
        ref: 1,
        code: "invalid_request",
        message: 'Unknown frame type "launch"',
      });
      ws.send({ t: "send", ref: "a", group: group.id });
      const missing = await ws.next();
      assert.equal(missing.code, "invalid_request");
      assert.equal(missing.ref, "a");
      ws.send({ t: "send", ref: "b", group: "A".repeat(22), body: cipher() });
      assert.deepEqual(await ws.next(), {
        t: "error",
        ref: "b",
        code: "not_found",
        message: "No such group",
      });
      ws.send({ t: "send", ref: "n", group: group.id, body: cipher(), client_id: "a\u0000b" });
      const nul = await ws.next();
      assert.equal(nul.code, "invalid_request", "a NUL in client_id never reaches the database");
      assert.equal(nul.ref, "n");
      ws.send({ t: "send", ref: "c", group: group.id, body: cipher(1025) });
      assert.equal((await ws.next()).code, "too_large");
      ws.send({ t: "send", ref: "d", group: group.id, body: cipher() });
      const sent = await ws.next();
      assert.equal(sent.t, "sent");
      assert.equal(sent.ref, "d");
      assert.equal(sent.seq, 1);
      ws.send({ t: "send", ref: "e", group: group.id, body: cipher() });
      assert.equal((await ws.next()).seq, 2);
      ws.send({ t: "send", ref: "f", group: group.id, body: cipher() });
      const limited = await ws.next();
      assert.equal(limited.code, "rate_limited");
      assert.ok(Number(limited.retry_after_ms) > 0);
      ws.send({ t: "ack", group: "B".repeat(22), seq: 1 });
      assert.equal((await ws.next()).code, "not_found");
      ws.send({ t: "ping", ref: 7 });
      assert.deepEqual(await ws.next(), { t: "pong", ref: 7 });
      ws.send(JSON.stringify({ t: "send", group: group.id, body: "A".repeat(200_000) }));
      assert.equal((await ws.closed).code, 1009);
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "a device holds at most 5 connections; revocation closes its sockets with 4003",
  async (db) => {
    const t = await startTestRelay({ db });
    try {
      const [phone, laptop] = await newAccount(t.url, 2);
      const sockets = [];
      for (let i = 0; i < 5; i++) sockets.push(await RawSocket.authed(t.wsUrl, laptop.token));
      const sixth = await RawSocket.open(t.wsUrl);
      sixth.send({ t: "auth", token: laptop.token });
      assert.equal((await sixth.closed).code, 4008);
      await phone.api.revokeDevice(laptop.device);
      for (const ws of sockets) assert.equal((await ws.closed).code, 4003);
      const again = await RawSocket.open(t.wsUrl);
      again.send({ t: "auth", token: laptop.token });
      assert.equal((await again.closed).code, 4003);
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "a socket authenticated with a token closes with 4001 when the token expires; others stay",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_TOKEN_TTL: "1h" } });
    try {
      const alice = await newDevice(t.url);
      const expiring = await RawSocket.authed(t.wsUrl, alice.token);
      const bySig = await RawSocket.open(t.wsUrl);
      bySig.send({
        t: "auth",
        device: alice.device,
        sig: await proveNonce(alice.identity.device, String(bySig.hello.nonce)),
      });
      assert.equal((await bySig.next()).t, "ready");
      // Half an hour later the device logs in again: its new token lives an hour from then.
      t.clock.advance(30 * 60_000);
      const { token } = await alice.api.login(alice.identity);
      const fresh = await RawSocket.authed(t.wsUrl, token);

      t.clock.advance(30 * 60_000 - 2_000);
      t.relay.deps.hub.expireTokens();
      expiring.send({ t: "ping", ref: 1 });
      assert.deepEqual(await expiring.next(), { t: "pong", ref: 1 }, "not before its expiry");

      // No test call this time: the hub's own once-a-second check closes it.
      t.clock.advance(3_000);
      assert.deepEqual(await expiring.closed, { code: 4001, reason: "token expired" });
      for (const ws of [bySig, fresh]) {
        ws.send({ t: "ping", ref: 2 });
        assert.deepEqual(await ws.next(), { t: "pong", ref: 2 });
      }
      t.clock.advance(30 * 60_000 + 1_000);
      assert.deepEqual(await fresh.closed, { code: 4001, reason: "token expired" });
      bySig.send({ t: "ping", ref: 3 });
      assert.deepEqual(await bySig.next(), { t: "pong", ref: 3 }, "a signature has no expiry");
      assert.equal(t.relay.deps.hub.connections, 1);
      bySig.close();
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases("presence lists online devices and announces comings and goings", async (db) => {
  const t = await startTestRelay({ db });
  try {
    const alice = await newDevice(t.url);
    const bob = await newDevice(t.url);
    const group = await alice.api.createGroup({ members: [bob.account] });
    await bob.api.acceptGroup(group.id); // an invited member's presence stays hidden
    const a = await RawSocket.authed(t.wsUrl, alice.token);
    a.send({ t: "sub", groups: [group.id], presence: true });
    await a.next((f) => f.t === "synced");
    a.send({ t: "presence", group: group.id });
    assert.deepEqual(await a.next((f) => f.t === "presence"), {
      t: "presence",
      group: group.id,
      online: [alice.device],
    });
    const b = await RawSocket.authed(t.wsUrl, bob.token);
    assert.deepEqual(await a.next((f) => f.t === "presence"), {
      t: "presence",
      group: group.id,
      device: bob.device,
      online: true,
    });
    b.close();
    assert.deepEqual(await a.next((f) => f.t === "presence"), {
      t: "presence",
      group: group.id,
      device: bob.device,
      online: false,
    });
    a.close();
  } finally {
    await t.stop();
  }
});

testBothDatabases(
  "SEALPOST_PRESENCE=off answers no device and sends no presence events",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_PRESENCE: "off" } });
    try {
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      await bob.api.acceptGroup(group.id);
      const a = await RawSocket.authed(t.wsUrl, alice.token);
      a.send({ t: "sub", groups: [group.id], presence: true });
      await a.next((f) => f.t === "synced");
      const b = await RawSocket.authed(t.wsUrl, bob.token);
      // A membership event published after Bob connected: a presence event would come first.
      await alice.api.putMember(group.id, (await newDevice(t.url)).account);
      await a.next((f) => f.t === "group");
      a.send({ t: "presence", group: group.id, ref: 1 });
      assert.deepEqual(await a.next((f) => f.t === "presence"), {
        t: "presence",
        group: group.id,
        online: [],
        ref: 1,
      });
      assert.equal(a.frames.filter((f) => f.t === "presence").length, 0);
      b.close();
      a.close();
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "membership changes are announced and sub null follows groups joined later",
  async (db) => {
    const t = await startTestRelay({ db });
    try {
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const b = await RawSocket.authed(t.wsUrl, bob.token);
      b.send({ t: "sub", groups: null });
      const group = await alice.api.createGroup();
      await alice.api.send(group.id, { body: cipher() });
      await alice.api.putMember(group.id, bob.account);
      assert.deepEqual(await b.next((f) => f.t === "group"), {
        t: "group",
        group: group.id,
        event: "member_added",
        account: bob.account,
      });
      const replayed = await b.next((f) => f.t === "msg");
      assert.equal(replayed.seq, 1);
      assert.deepEqual(await b.next((f) => f.t === "synced"), {
        t: "synced",
        group: group.id,
        seq: 1,
      });
      await alice.api.send(group.id, { body: cipher() });
      assert.equal((await b.next((f) => f.t === "msg")).seq, 2);
      await alice.api.putMember(group.id, bob.account, "admin");
      assert.equal((await b.next((f) => f.t === "group")).event, "role_changed");
      await alice.api.removeMember(group.id, bob.account);
      assert.equal((await b.next((f) => f.t === "group")).event, "member_removed");
      await alice.api.send(group.id, { body: cipher() });
      assert.ok(await b.none((f) => f.t === "msg"), "a removed member receives nothing more");
      b.close();
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "handleSocket() echoes only a documented ref: a 20,000-deep ref gets an error without it",
  async (db) => {
    const t = await startTestRelay({ db });
    try {
      const alice = await newDevice(t.url);
      const ws = await RawSocket.authed(t.wsUrl, alice.token);
      const deep = '{"a":'.repeat(20_000) + "0" + "}".repeat(20_000);
      ws.send(`{"t":"nonsense","ref":${deep}}`);
      const error = await ws.next((f) => f.t === "error");
      assert.equal(error.code, "invalid_request");
      assert.equal("ref" in error, false, "an undocumented ref is not echoed");
      ws.send({ t: "ping", ref: "x".repeat(129) });
      const tooLong = await ws.next();
      assert.equal(tooLong.code, "invalid_request");
      assert.equal("ref" in tooLong, false, "a ref over 128 characters is not echoed");
      ws.send({ t: "ping", ref: 7 });
      assert.deepEqual(await ws.next(), { t: "pong", ref: 7 });
      ws.close();
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "before auth a frame over 4 KiB closes 1009; deep or wide JSON frames are refused, not a crash",
  async (db) => {
    const t = await startTestRelay({ db });
    try {
      const alice = await newDevice(t.url);
      const big = await RawSocket.open(t.wsUrl);
      big.send(JSON.stringify({ t: "auth", token: "x".repeat(8 * 1024) }));
      assert.equal((await big.closed).code, 1009);

      const deepAuth = await RawSocket.open(t.wsUrl);
      deepAuth.send(`{"t":"auth","token":${"[".repeat(1000)}${"]".repeat(1000)}}`);
      assert.equal((await deepAuth.closed).code, 4001);

      const ws = await RawSocket.authed(t.wsUrl, alice.token);
      ws.send(`{"t":"ping","ref":1,"x":${"[".repeat(20_000)}${"]".repeat(20_000)}}`);
      const deep = await ws.next();
      assert.equal(deep.code, "invalid_request");
      assert.match(String(deep.message), /nested deeper than 32 levels/);
      ws.send(JSON.stringify({ t: "ping", x: new Array(10_001).fill(0) }));
      assert.match(String((await ws.next()).message), /more than 10000 entries/);
      ws.send({ t: "ping", ref: 2 });
      assert.deepEqual(await ws.next(), { t: "pong", ref: 2 }, "the socket is still usable");
      ws.close();
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "a WebSocket ack past last_seq is clamped at once, not only at the next flush",
  async (db) => {
    const t = await startTestRelay({ db });
    try {
      const alice = await newDevice(t.url);
      const group = await alice.api.createGroup();
      await alice.api.send(group.id, { body: cipher() });
      await alice.api.send(group.id, { body: cipher() });
      const ws = await RawSocket.authed(t.wsUrl, alice.token);
      ws.send({ t: "ack", group: group.id, seq: 9e15 });
      ws.send({ t: "ping", ref: 1 });
      await ws.next((f) => f.t === "pong");
      const before = (await alice.api.groups()).find((g) => g.id === group.id)!;
      assert.equal(before.cursor, 2, "the buffered cursor is clamped to last_seq");
      // Subscribed: an ack within what was delivered needs no lookup and is kept as sent.
      ws.send({ t: "sub", groups: [group.id], since: { [group.id]: 0 } });
      await ws.next((f) => f.t === "synced");
      ws.send({ t: "ack", group: group.id, seq: 1e15 });
      ws.send({ t: "ping", ref: 2 });
      await ws.next((f) => f.t === "pong");
      await t.relay.deps.cursors.flush();
      const after = (await alice.api.groups()).find((g) => g.id === group.id)!;
      assert.equal(after.cursor, 2);
      ws.close();
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "unauthenticated WebSockets are capped per client address and in total",
  async (db) => {
    const t = await startTestRelay({
      db,
      env: { SEALPOST_MAX_PENDING_SOCKETS: "2", SEALPOST_MAX_PENDING_SOCKETS_PER_IP: "2" },
    });
    const open: RawSocket[] = [];
    const upgrade = async (from: string) => {
      const response = await fetch(t.wsUrl.replace("ws:", "http:"), {
        headers: {
          upgrade: "websocket",
          connection: "upgrade",
          "sec-websocket-version": "13",
          "sec-websocket-key": btoa("0123456789abcdef"),
        },
        client: Deno.createHttpClient({ localAddress: from }),
      });
      await response.body?.cancel();
      return response.status;
    };
    try {
      const alice = await newDevice(t.url);
      open.push(await RawSocket.open(t.wsUrl), await RawSocket.open(t.wsUrl));
      assert.equal(await upgrade("127.0.0.1"), 429, "a third pending socket from one address");
      assert.equal(await upgrade("127.0.0.2"), 503, "another address: the total is reached");
      // Authenticating frees a slot.
      open[0].send({ t: "auth", token: alice.token });
      await open[0].next((f) => f.t === "ready");
      assert.equal(await upgrade("127.0.0.2"), 101);
      await new Promise((resolve) => setTimeout(resolve, 200)); // that socket closes again
      const next = await RawSocket.open(t.wsUrl);
      open.push(next);
      next.send({ t: "auth", token: alice.token });
      assert.equal((await next.next()).t, "ready");
    } finally {
      for (const ws of open) ws.close();
      await t.stop();
    }
  },
);

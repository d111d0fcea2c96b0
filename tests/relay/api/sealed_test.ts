/**
 * Tests of sealed group sends (relay/api/sealed.ts, the sealed path of relay/send.ts and
 * relay/persist.ts, relay/accounts/send_capability.ts; issue 16) through the SDK's
 * client/sealed.ts and raw calls: a sealed message is stored with no sender (checked in the
 * database) and delivered in order among normal sends; a repeated `client_id` answers the
 * original; a wrong or rotated-out capability — including after a member is removed — is refused
 * like an unknown group; the sealed WebSocket sends; rate limits apply per capability and per
 * address. Runs on PGlite and on real Postgres.
 */

import assert from "node:assert/strict";
import {
  clearSendCapability,
  newSendCapability,
  SealedSender,
  sendVerifier,
  setSendCapability,
} from "../../../client/mod.ts";
import { cipher, newDevice } from "../../helpers/accounts.ts";
import { assertErrorBody, assertRejects, call, relaySuite } from "../../helpers/http.ts";
import { RawSocket } from "../../helpers/ws.ts";

relaySuite("sealed group sends", {
  env: { SEALPOST_RATE_SEALED: "20/min", SEALPOST_RATE_SEALED_ADDRESS: "off" },
}, {
  "a sealed send is stored without a sender and delivered in order with normal sends": async (
    t,
  ) => {
    const alice = await newDevice(t.url);
    const bob = await newDevice(t.url);
    const group = await alice.api.createGroup({ members: [bob.account] });
    await bob.api.acceptGroup(group.id);
    const cap = newSendCapability();
    await setSendCapability(alice.api, group.id, cap);
    const stored = await t.database.db.selectFrom("groups").select("send_verifier")
      .where("id", "=", group.id).executeTakeFirstOrThrow();
    assert.equal(
      Buffer.from(stored.send_verifier!).toString("base64url"),
      await sendVerifier(cap),
      "the relay keeps only the SHA-256",
    );

    const b = await RawSocket.authed(t.wsUrl, bob.token);
    b.send({ t: "sub", groups: [group.id] });
    await b.next((f) => f.t === "synced");
    const sealed = new SealedSender(t.url);
    const bodies = [cipher(), cipher(), cipher(), cipher()];
    const first = await alice.api.send(group.id, { body: bodies[0] });
    const second = await sealed.send(group.id, cap, { body: bodies[1], client_id: "s-1" });
    const third = await sealed.send(group.id, cap, { body: bodies[2], client_id: "s-2" });
    const fourth = await bob.api.send(group.id, { body: bodies[3] });
    assert.deepEqual([first.seq, second.seq, third.seq, fourth.seq], [1, 2, 3, 4]);
    assert.equal(second.duplicate, false);

    const live = await b.take(4, (f) => f.t === "msg");
    assert.deepEqual(live.map((f) => f.seq), [1, 2, 3, 4]);
    assert.deepEqual(live.map((f) => f.body), bodies);
    assert.equal(live[1].from, null, "delivered without a sender");
    assert.equal(live[2].from, null);
    assert.deepEqual(live[0].from, { account: alice.account, device: alice.device });
    const page = await alice.api.messages(group.id);
    assert.deepEqual(page.messages.map((m) => m.from === null), [false, true, true, false]);

    const rows = await t.database.db.selectFrom("messages")
      .select(["seq", "sender_account", "sender_device"]).where("group_id", "=", group.id)
      .orderBy("seq").execute();
    assert.deepEqual(rows.map((r) => [r.seq, r.sender_account, r.sender_device]), [
      [1, alice.account, alice.device],
      [2, null, null],
      [3, null, null],
      [4, bob.account, bob.device],
    ]);

    // Idempotent per group: a repeat answers the original seq with 200.
    const again = await sealed.send(group.id, cap, { body: cipher(), client_id: "s-1" });
    assert.deepEqual(again, { ...second, duplicate: true });
    b.close();
  },

  "a wrong, cleared or rotated-out capability is refused like an unknown group": async (t) => {
    const alice = await newDevice(t.url);
    const bob = await newDevice(t.url);
    const carol = await newDevice(t.url);
    const group = await alice.api.createGroup({ members: [bob.account, carol.account] });
    const sealed = new SealedSender(t.url);
    const none = await call(t.url, "POST", `/v1/sealed/groups/${group.id}/messages`, {
      body: { body: cipher(), cap: newSendCapability() },
    });
    assertErrorBody(none, 404, "not_found");
    const unknownGroup = await call(t.url, "POST", `/v1/sealed/groups/${"A".repeat(22)}/messages`, {
      body: { body: cipher(), cap: newSendCapability() },
    });
    assert.deepEqual(none.body, unknownGroup.body, "no existence oracle");

    const old = newSendCapability();
    await setSendCapability(alice.api, group.id, old);
    assert.equal((await sealed.send(group.id, old, { body: cipher() })).seq, 1);
    await assertRejects(
      sealed.send(group.id, newSendCapability(), { body: cipher() }),
      404,
      "not_found",
    );

    // Removing a member clears the verifier: the removed member's capability stops working.
    await alice.api.removeMember(group.id, carol.account);
    await assertRejects(sealed.send(group.id, old, { body: cipher() }), 404, "not_found");
    const next = newSendCapability();
    await setSendCapability(bob.api, group.id, next);
    assert.equal((await sealed.send(group.id, next, { body: cipher() })).seq, 2);
    await assertRejects(sealed.send(group.id, old, { body: cipher() }), 404, "not_found");
    // Only members manage it (and a removed member is not one); clearing refuses every send.
    await assertRejects(setSendCapability(carol.api, group.id, old), 404, "not_found");
    await clearSendCapability(alice.api, group.id);
    await assertRejects(sealed.send(group.id, next, { body: cipher() }), 404, "not_found");
    assert.equal((await alice.api.group(group.id)).last_seq, 2, "refused sends take no seq");
  },

  "sealed sends are bounded: body size, fields, and the rate per capability": async (t) => {
    const alice = await newDevice(t.url);
    const group = await alice.api.createGroup();
    const cap = newSendCapability();
    await setSendCapability(alice.api, group.id, cap);
    const path = `/v1/sealed/groups/${group.id}/messages`;
    const big = "A".repeat(Math.ceil(64 * 1024 * 4 / 3) + 8);
    assertErrorBody(
      await call(t.url, "POST", path, { body: { body: big, cap } }),
      413,
      "too_large",
    );
    assertErrorBody(
      await call(t.url, "POST", path, { body: { body: cipher(), cap: "short" } }),
      400,
      "invalid_request",
    );
    assertErrorBody(
      await call(t.url, "POST", path, { body: { body: cipher() } }),
      400,
      "invalid_request",
    );
    // 20/min per capability here: the 21st in a burst is refused with a retry hint.
    const sealed = new SealedSender(t.url);
    for (let i = 0; i < 20; i++) await sealed.send(group.id, cap, { body: cipher() });
    const limited = await assertRejects(
      sealed.send(group.id, cap, { body: cipher() }),
      429,
      "rate_limited",
    );
    assert.ok((limited.retryAfterMs ?? 0) > 0);
    // Sealed refusals count in messages_rejected like any send's (this relay saw no other).
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    const rejected = (reason: string) =>
      Number(
        new RegExp(`^sealpost_messages_rejected_total\\{reason="${reason}"\\} (\\d+)$`, "m")
          .exec(metrics)?.[1] ?? 0,
      );
    assert.equal(rejected("too_large"), 1);
    assert.equal(rejected("rate_limited"), 1);
  },

  "the sealed WebSocket sends without a token and answers sent, error and pong": async (t) => {
    const alice = await newDevice(t.url);
    const group = await alice.api.createGroup();
    const cap = newSendCapability();
    await setSendCapability(alice.api, group.id, cap);
    const ws = await RawSocket.open(t.wsUrl.replace("/v1/ws", "/v1/sealed/ws"));
    assert.equal(ws.hello.sealed, true);
    ws.send({ t: "send", ref: 1, group: group.id, cap, body: cipher(), client_id: "w-1" });
    const sent = await ws.next((f) => f.t === "sent");
    assert.equal(sent.ref, 1);
    assert.equal(sent.seq, 1);
    ws.send({ t: "send", ref: 2, group: group.id, cap: newSendCapability(), body: cipher() });
    assert.deepEqual(
      [(await ws.next((f) => f.t === "error")).code],
      ["not_found"],
    );
    ws.send({ t: "sub", groups: null });
    assert.equal((await ws.next((f) => f.t === "error")).code, "invalid_request", "send only");
    ws.send({ t: "ping", ref: "p" });
    assert.deepEqual(await ws.next((f) => f.t === "pong"), { t: "pong", ref: "p" });
    // A ref beyond the documented 128 characters is not echoed, as on /v1/ws.
    ws.send({ t: "ping", ref: "r".repeat(129) });
    const long = await ws.next((f) => f.t === "error");
    assert.equal(long.code, "invalid_request");
    assert.equal("ref" in long, false);
    ws.close();
    const [stored] = (await alice.api.messages(group.id)).messages;
    assert.equal(stored.from, null);
  },
});

relaySuite("sealed sends per address", {
  env: { SEALPOST_RATE_SEALED_ADDRESS: "3/min" },
}, {
  "sealed sends are rate limited per client address, whatever the capability": async (t) => {
    const alice = await newDevice(t.url);
    const sealed = new SealedSender(t.url);
    for (let i = 0; i < 3; i++) {
      const group = await alice.api.createGroup();
      const cap = newSendCapability();
      await setSendCapability(alice.api, group.id, cap);
      await sealed.send(group.id, cap, { body: cipher() });
    }
    const group = await alice.api.createGroup();
    const cap = newSendCapability();
    await setSendCapability(alice.api, group.id, cap);
    await assertRejects(sealed.send(group.id, cap, { body: cipher() }), 429, "rate_limited");
  },
});

relaySuite("sealed sockets and the caps on unauthenticated sockets", {
  env: { SEALPOST_MAX_PENDING_SOCKETS_PER_IP: "2" },
}, {
  "sealed sockets count as unauthenticated; their frames are bounded like any": async (t) => {
    const url = t.wsUrl.replace("/v1/ws", "/v1/sealed/ws");
    const first = await RawSocket.open(url);
    const second = await RawSocket.open(t.wsUrl);
    const refused = await fetch(url.replace("ws:", "http:"), {
      headers: {
        upgrade: "websocket",
        connection: "upgrade",
        "sec-websocket-version": "13",
        "sec-websocket-key": btoa("0123456789abcdef"),
      },
    });
    await refused.body?.cancel();
    assert.equal(refused.status, 429, "a third unauthenticated socket from one address");
    first.send(`{"t":"ping","ref":1,"x":${"[".repeat(20_000)}${"]".repeat(20_000)}}`);
    const deep = await first.next((f) => f.t === "error");
    assert.equal(deep.code, "invalid_request");
    assert.match(String(deep.message), /nested deeper than 32 levels/);
    first.send({ t: "send", group: 5, cap: newSendCapability(), body: cipher() });
    assert.match(String((await first.next((f) => f.t === "error")).message), /group: expected/);
    first.close();
    second.close();
    await first.closed;
    const again = await RawSocket.open(url);
    again.send({ t: "ping", ref: 2 });
    assert.deepEqual(await again.next((f) => f.t === "pong"), { t: "pong", ref: 2 });
    again.close();
  },
});

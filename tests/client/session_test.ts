import assert from "node:assert/strict";
import {
  HttpClient,
  type Message,
  Session,
  SessionError,
  type SessionState,
} from "../../client/mod.ts";
import { cipher, newAccount, newDevice } from "../helpers/accounts.ts";
import { freePort } from "../helpers/postgres.ts";
import { startTestRelay, testBothDatabases } from "../helpers/relay.ts";
import { startTcpProxy } from "../helpers/tcp_proxy.ts";

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Seen = { state: SessionState; code?: number };

/** Records the states a session goes through (pass `onState` to its options). */
function recordStates(): {
  states: Seen[];
  onState(state: SessionState, d: { code?: number }): void;
} {
  const states: Seen[] = [];
  return { states, onState: (state, detail) => void states.push({ state, code: detail.code }) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

testBothDatabases("Session: a revoked device ends in failed with no reconnect loop", async (db) => {
  const t = await startTestRelay({ db });
  try {
    const [phone, laptop] = await newAccount(t.url, 2);
    const { states, onState } = recordStates();
    const session = new Session(laptop.api, {
      identity: laptop.identity,
      minBackoffMs: 20,
      onState,
    });
    await session.ready();
    await phone.api.revokeDevice(laptop.device);
    await waitFor(() => session.state === "failed", "failed");
    const failed = states.at(-1)!;
    assert.equal(failed.code, 4003);
    // Calls end at once with the reason, and nothing reconnects afterwards.
    const sent = await session.send("A".repeat(22), { body: cipher() }).catch((e) => e);
    assert.ok(sent instanceof SessionError && sent.code === "failed", String(sent));
    await assert.rejects(session.ready(), SessionError);
    const connects = session.connects;
    await sleep(500);
    assert.equal(session.connects, connects);
    // The close reaches the client as 4003, or (seen with Deno's client) as a bare close
    // followed by a 4003 refusal of the one reconnect: either way it ends there.
    assert.ok(states.filter((s) => s.state === "connecting").length <= 2, JSON.stringify(states));
    const count = states.length;
    await sleep(300);
    assert.equal(states.length, count, "no state changes after failed");
    session.close();
  } finally {
    await t.stop();
  }
});

testBothDatabases(
  "Session: an expired token is renewed by logging in with the identity and the session resumes",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_TOKEN_TTL: "1h" } });
    try {
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      const got: number[] = [];
      const { states, onState } = recordStates();
      const session = new Session(bob.api, {
        identity: bob.identity,
        auth: "token",
        minBackoffMs: 20,
        onMessage: (m) => void got.push(m.seq),
        onState,
      });
      await session.ready();
      await alice.api.send(group.id, { body: cipher() });
      await waitFor(() => got.length === 1, "the first message");
      const oldToken = bob.api.token;
      // The relay's clock passes the token's expiry; the next auth with it is refused (4001).
      t.clock.advance(2 * 3_600_000);
      session.reconnect();
      await alice.api.login(alice.identity);
      await alice.api.send(group.id, { body: cipher() });
      await waitFor(() => session.connects === 2 && got.length === 2, "reconnected with seq 2");
      assert.deepEqual(got, [1, 2]);
      assert.notEqual(bob.api.token, oldToken, "a new token was fetched");
      assert.ok(states.some((s) => s.state === "disconnected" && s.code === 4001), "saw 4001");
      assert.equal(session.state, "connected");
      // The renewed token works over HTTP too.
      assert.equal((await bob.api.groups()).length, 1);
      session.close();
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "Session: the relay's 4001 at token expiry is cured by a renewal; the session resumes by itself",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_TOKEN_TTL: "1h" } });
    try {
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      const got: number[] = [];
      const { states, onState } = recordStates();
      const session = new Session(bob.api, {
        identity: bob.identity,
        auth: "token",
        minBackoffMs: 20,
        onMessage: (m) => void got.push(m.seq),
        onState,
      });
      await session.ready();
      const oldToken = bob.api.token;
      t.clock.advance(2 * 3_600_000); // the relay closes the socket 4001 ("token expired")
      await waitFor(() => session.connects === 2 && session.state === "connected", "resumed");
      assert.ok(states.some((s) => s.state === "disconnected" && s.code === 4001), "saw 4001");
      assert.notEqual(bob.api.token, oldToken);
      await alice.api.login(alice.identity);
      await alice.api.send(group.id, { body: cipher() });
      await waitFor(() => got.length === 1, "a message after the renewal");
      session.close();
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "Session: getToken supplies the renewed token; a 4001 it cannot cure ends in failed",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_TOKEN_TTL: "1h" } });
    try {
      const bob = await newDevice(t.url);
      let calls = 0;
      let refuse = false;
      const session = new Session(bob.api, {
        minBackoffMs: 20,
        getToken: async () => {
          calls++;
          if (refuse) return "not-a-token";
          const fresh = new HttpClient(t.url);
          return await fresh.login(bob.identity);
        },
      });
      await session.ready();
      t.clock.advance(2 * 3_600_000);
      session.reconnect();
      await waitFor(() => calls === 1 && session.state === "connected", "renewed");
      // Now the renewal hands out a token the relay refuses: one try, then failed.
      t.clock.advance(2 * 3_600_000);
      refuse = true;
      session.reconnect();
      await waitFor(() => session.state === "failed", "failed");
      assert.equal(calls, 2);
      await sleep(300);
      assert.equal(calls, 2, "no renewal loop");
      session.close();

      // Without getToken or identity a 4001 is final at once.
      const carol = await newDevice(t.url);
      const plain = new Session(carol.api, { minBackoffMs: 20 });
      await plain.ready();
      t.clock.advance(2 * 3_600_000);
      plain.reconnect();
      await waitFor(() => plain.state === "failed", "failed without a refresher");
      plain.close();
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "Session: a message whose handler throws is reported, not marked seen, and delivered again",
  async (db) => {
    const t = await startTestRelay({ db });
    try {
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      const handled: number[] = [];
      let thrown = 0;
      const errors: string[] = [];
      const session = new Session(bob.api, {
        minBackoffMs: 20,
        onMessage: (m: Message) => {
          if (m.seq === 2 && thrown++ === 0) throw new Error("disk full");
          handled.push(m.seq);
        },
        onError: (e) => void errors.push(`${e.code}:${e.seq ?? ""}`),
      });
      for (let i = 0; i < 3; i++) await alice.api.send(group.id, { body: cipher() });
      await waitFor(() => handled.length === 3, "all three handled");
      assert.deepEqual(handled, [1, 2, 3]);
      assert.deepEqual(errors, ["handler_failed:2"]);
      assert.equal(session.seen.get(group.id), 3);
      await session.ping();
      session.close();
      await t.relay.deps.cursors.flush();
      assert.equal((await bob.api.groups())[0].cursor, 3);
    } finally {
      await t.stop();
    }
  },
);

Deno.test("Session: no call hangs while the relay cannot be reached", async () => {
  const api = new HttpClient(`http://127.0.0.1:${freePort()}`);
  api.token = "unused";
  const rejecting = new Session(api, { whileDisconnected: "reject", minBackoffMs: 50 });
  const group = "A".repeat(22);
  for (
    const call of [
      rejecting.send(group, { body: "AA" }),
      rejecting.ping(),
      rejecting.presence(group),
      rejecting.ack(group, 1),
    ]
  ) {
    const error = await call.catch((e) => e);
    assert.ok(error instanceof SessionError && error.code === "disconnected", String(error));
  }
  rejecting.close();

  const queueing = new Session(api, { minBackoffMs: 50, callTimeoutMs: 200, sendTimeoutMs: 200 });
  const started = Date.now();
  const results = await Promise.allSettled([
    queueing.send(group, { body: "AA" }),
    queueing.ping(),
    queueing.presence(group),
    queueing.ack(group, 1),
    queueing.ready({ timeoutMs: 200 }),
  ]);
  for (const result of results) {
    assert.equal(result.status, "rejected");
    const reason = (result as PromiseRejectedResult).reason;
    assert.ok(reason instanceof SessionError && reason.code === "timeout", String(reason));
  }
  assert.ok(Date.now() - started < 5000);
  const controller = new AbortController();
  const aborted = queueing.send(group, { body: "AA" }, { signal: controller.signal, timeoutMs: 0 });
  controller.abort(new Error("user cancelled"));
  await assert.rejects(aborted, /user cancelled/);
  const pending = queueing.ping({ timeoutMs: 0 });
  queueing.close();
  const closed = await pending.catch((e) => e);
  assert.ok(closed instanceof SessionError && closed.code === "closed");
  assert.equal(queueing.state, "disconnected");
});

testBothDatabases(
  "Session: rate-limited sends wait the relay's retry_after_ms and are retried under the same client_id",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "20/min" } });
    try {
      const alice = await newDevice(t.url);
      const group = await alice.api.createGroup();
      const limited: number[] = [];
      const session = new Session(alice.api, {
        onError: (e) => {
          if (e.code === "rate_limited") limited.push(e.retry_after_ms ?? -1);
        },
      });
      await session.ready();
      // The burst is 20: five of these 25 are refused at first, with a retry hint.
      const sends = Array.from(
        { length: 25 },
        (_, i) => session.send(group.id, { body: cipher(), client_id: `c${i}` }),
      );
      await waitFor(() => limited.length >= 5, "rate_limited answers");
      assert.ok(limited.every((ms) => ms > 0), `retry hints: ${limited}`);
      t.clock.advance(60_000); // the relay's bucket refills; the retries go through
      const replies = await Promise.all(sends);
      const seqs = replies.map((r) => r.seq!).sort((a, b) => a - b);
      assert.deepEqual(seqs, Array.from({ length: 25 }, (_, i) => i + 1));
      const stored = await alice.api.messages(group.id, 0, 100);
      assert.equal(stored.messages.length, 25, "each stored once");
      session.close();
    } finally {
      await t.stop();
    }
  },
);

Deno.test({
  name: "Session: a connection that stops answering is noticed by its pings and replaced",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const t = await startTestRelay();
    const proxy = startTcpProxy(Number(new URL(t.url).port));
    try {
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      const got: number[] = [];
      const { states, onState } = recordStates();
      const session = new Session(bob.api, {
        url: `ws://127.0.0.1:${proxy.port}/v1/ws`,
        pingIntervalMs: 300,
        pongTimeoutMs: 1500, // generous: a loaded test machine may answer slowly
        minBackoffMs: 20,
        onMessage: (m) => void got.push(m.seq),
        onState,
      });
      await session.ready();
      proxy.freezeAll(); // silent: no close reaches either side
      await alice.api.send(group.id, { body: cipher() });
      await waitFor(
        () => got.length === 1 && session.connects >= 2,
        "resumed on a new socket",
        20_000,
      );
      assert.ok(states.some((s) => s.state === "disconnected" && s.code === 4000), "gave up");
      assert.ok(proxy.accepted >= 2);
      session.close();
    } finally {
      await proxy.close();
      await t.stop();
    }
  },
});

Deno.test({
  name: "Session: the token is renewed before tokenExpiresAt without dropping the connection",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const t = await startTestRelay();
    try {
      const bob = await newDevice(t.url);
      const first = bob.api.token;
      // As if the token had 2.2 s left: renewal is due 1 s before expiry.
      bob.api.tokenExpiresAt = Date.now() + 2200;
      let calls = 0;
      const session = new Session(bob.api, {
        refreshMarginMs: 1000,
        getToken: async () => {
          calls++;
          return await new HttpClient(t.url).login(bob.identity);
        },
      });
      await session.ready();
      await waitFor(() => calls === 1, "a renewal", 5000);
      await waitFor(() => bob.api.token !== first, "the new token in the HTTP client", 5000);
      assert.ok(bob.api.tokenExpiresAt > Date.now() + 3_600_000, "the relay's new expiry");
      assert.equal(session.connects, 1);
      assert.equal(session.state, "connected");
      await bob.api.groups(); // the renewed token works
      session.close();
    } finally {
      await t.stop();
    }
  },
});

Deno.test({
  name: "Session: frames that are not JSON objects are ignored, not thrown",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Not the relay: a loopback server that answers like one but sends junk first (what a broken
    // proxy or a hostile endpoint could), to check the session survives it.
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onopen = () => {
        for (const junk of ["null", "5", '"text"', "[]", "{", "{}"]) socket.send(junk);
        socket.send(JSON.stringify({ t: "hello", nonce: "n" }));
      };
      socket.onmessage = (event) => {
        const frame = JSON.parse(String(event.data));
        if (frame.t === "auth") socket.send(JSON.stringify({ t: "ready" }));
        if (frame.t === "ping") socket.send(JSON.stringify({ t: "pong", ref: frame.ref }));
      };
      return response;
    });
    try {
      const api = new HttpClient(`http://127.0.0.1:${server.addr.port}`);
      api.token = "t";
      const session = new Session(api);
      await session.ready({ timeoutMs: 5000 });
      await session.ping({ timeoutMs: 5000 });
      session.close();
    } finally {
      await server.shutdown();
    }
  },
});

// The chat the package tests run in Node, Deno and Chromium with the SAME built package: two
// devices register, share a group, send and receive over sessions, and one reconnects and
// resumes. Plain JavaScript with no imports: each runtime passes in the package's module and the
// relay's URL, and checks the summary this returns.

/** Waits for `check()` (polling, at most `ms`). */
async function until(check, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs the chat against the relay at `url` with the SDK module `sdk`. */
export async function chat(sdk, url) {
  const { createDeviceIdentity, HttpClient, Session, b64url } = sdk;
  const alice = await createDeviceIdentity();
  const bob = await createDeviceIdentity();
  const aliceApi = new HttpClient(url);
  const bobApi = new HttpClient(url);
  await aliceApi.register(alice, { name: "alice" });
  await bobApi.register(bob, { name: "bob" });
  const group = await aliceApi.createGroup({ members: [bob.account] });
  await bobApi.acceptGroup(group.id); // invited until accepted: then Alice sees Bob's presence
  const received = [];
  const states = [];
  const bobSession = new Session(bobApi, {
    identity: bob,
    minBackoffMs: 20,
    onMessage: (m) => void received.push({ seq: m.seq, body: m.body, from: m.from.device }),
    onState: (state) => void states.push(state),
  });
  const aliceSession = new Session(aliceApi, { identity: alice });
  try {
    await Promise.all([bobSession.ready({ timeoutMs: 10_000 }), aliceSession.ready()]);
    const text = (s) => b64url(new TextEncoder().encode(s));
    const first = await aliceSession.send(group.id, { body: text("hello") });
    await until(() => received.length === 1, "the first message");
    bobSession.reconnect();
    const second = await aliceSession.send(group.id, { body: text("again") });
    await until(
      () => received.length === 2 && bobSession.state === "connected",
      "the message across the reconnect",
    );
    const online = await aliceSession.presence(group.id);
    await bobSession.ping();
    return {
      protocol: sdk.PROTOCOL_VERSION,
      sent: [first.seq, second.seq],
      received,
      alice: alice.device.id,
      bobOnline: online.includes(bob.device.id),
      connects: bobSession.connects,
      states,
    };
  } finally {
    aliceSession.close();
    bobSession.close();
  }
}

/** The summary every runtime must see (throws on a difference). */
export function check(summary) {
  const want = (ok, what) => {
    if (!ok) throw new Error(`${what}: ${JSON.stringify(summary)}`);
  };
  want(summary.protocol === 1, "protocol version 1");
  want(summary.sent[0] === 1 && summary.sent[1] === 2, "seqs 1 and 2");
  want(summary.received.map((m) => m.seq).join() === "1,2", "received 1 then 2, once each");
  want(summary.received.every((m) => m.from === summary.alice), "from alice's device");
  want(summary.bobOnline, "bob online");
  want(summary.connects === 2, "bob connected twice (reconnected)");
  want(
    summary.states.join() ===
      "connecting,connected,disconnected,connecting,connected,disconnected",
    "states: a reconnect, then close()",
  );
}

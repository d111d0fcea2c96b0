import assert from "node:assert/strict";
import { type Message, Session } from "../../client/mod.ts";
import { cipher, newDevice } from "../helpers/accounts.ts";
import { startTestRelay, testBothDatabases } from "../helpers/relay.ts";
import { SlowClient } from "../helpers/slow_client.ts";
import { RawSocket } from "../helpers/ws.ts";
import { Subscription } from "../../relay/subscribe.ts";
import { replayReader } from "../../relay/backlog.ts";

testBothDatabases(
  "sub replays after since, then synced, then live — no gap, duplicate or reordering at the seam",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      const total = 300;
      // Senders keep sending while subscribers join at different moments.
      const sending = (async () => {
        for (let i = 0; i < total; i += 10) {
          await Promise.all(
            Array.from(
              { length: 10 },
              (_, k) => alice.api.send(group.id, { body: cipher(16), client_id: `x${i + k}` }),
            ),
          );
        }
      })();
      const subscribers = [];
      for (let s = 0; s < 4; s++) {
        await new Promise((r) => setTimeout(r, 40 * s));
        const ws = await RawSocket.authed(t.wsUrl, bob.token);
        const since = s * 20;
        ws.send({ t: "sub", groups: [group.id], since: { [group.id]: since } });
        subscribers.push({ ws, since });
      }
      await sending;
      for (const { ws, since } of subscribers) {
        const frames = await ws.take(
          total - since + 1,
          (f) => f.t === "msg" || f.t === "synced",
          20_000,
        );
        const seqs = frames.filter((f) => f.t === "msg").map((f) => Number(f.seq));
        assert.deepEqual(seqs, Array.from({ length: total - since }, (_, i) => since + i + 1));
        const synced = frames.findIndex((f) => f.t === "synced");
        assert.ok(synced >= 0, "synced was sent");
        const syncedSeq = Number(frames[synced].seq);
        const before = frames.slice(0, synced).filter((f) => f.t === "msg");
        assert.equal(
          before.length === 0 ? since : Number(before.at(-1)!.seq),
          syncedSeq,
          "synced marks the end of the replay",
        );
        assert.ok(await ws.none((f) => f.t === "msg", 200), "no duplicates afterwards");
        ws.close();
      }
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "cursors persist across reconnect: a session resumes after its last ack",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      for (let i = 0; i < 5; i++) await alice.api.send(group.id, { body: cipher() });
      const got: number[] = [];
      const first = new Session(bob.api, { onMessage: (m) => void got.push(m.seq) });
      await waitFor(() => got.length === 5);
      await first.ping(); // acks were sent before the ping
      first.close();
      await t.relay.deps.cursors.flush();
      for (let i = 0; i < 3; i++) await alice.api.send(group.id, { body: cipher() });
      const later: number[] = [];
      const second = new Session(bob.api, { onMessage: (m) => void later.push(m.seq) });
      await waitFor(() => later.length === 3);
      assert.deepEqual(later, [6, 7, 8]);
      await second.ping();
      second.close();
      const groups = await bob.api.groups();
      assert.equal(groups[0].cursor, 8);
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "a slow consumer is closed 4009 and resumes from its cursor without loss",
  async (db) => {
    const t = await startTestRelay({
      db,
      env: { SEALPOST_RATE_SEND: "off" },
      overrides: { maxSocketBufferBytes: 256 * 1024 },
    });
    try {
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      const port = Number(new URL(t.url).port);
      const slow = await SlowClient.connect(port);
      await slow.send({ t: "auth", token: bob.token });
      await slow.send({ t: "sub", groups: [group.id] });
      // Live from here on: what follows is live delivery, which backpressure cuts off (a replay
      // paces itself instead and would wait 30 s for the client before closing it).
      await slow.until((f) => f.t === "synced");
      // ~24 MB of frames: far past the socket buffers and the relay's 256 KiB limit.
      const total = 600;
      for (let i = 0; i < total; i += 20) {
        await Promise.all(
          Array.from({ length: 20 }, () => alice.api.send(group.id, { body: cipher(30_000) })),
        );
      }
      const { frames, closeCode } = await slow.drain();
      assert.equal(closeCode, 4009);
      const received = frames.filter((f) => f.t === "msg").map((f) => Number(f.seq));
      assert.ok(received.length < total, `the slow client was cut off (got ${received.length})`);
      assert.deepEqual(received, received.map((_, i) => i + 1), "what it got was in order");

      // It acked nothing, so a fresh session resumes from seq 0 and gets everything.
      const got: Message[] = [];
      const session = new Session(bob.api, { onMessage: (m) => void got.push(m) });
      await waitFor(() => got.length === total, 30_000);
      assert.deepEqual(got.map((m) => m.seq), Array.from({ length: total }, (_, i) => i + 1));
      session.close();
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "Session resends under the same client_id across a reconnect, so nothing is duplicated",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const alice = await newDevice(t.url);
      const group = await alice.api.createGroup();
      const session = new Session(alice.api, { groups: [group.id] });
      await session.ready();
      const sends = Array.from(
        { length: 20 },
        (_, i) => session.send(group.id, { body: cipher(), client_id: `s${i}` }),
      );
      session.reconnect();
      const replies = await Promise.all(sends);
      assert.deepEqual(
        replies.map((r) => r.seq).sort((a, b) => a! - b!),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.equal((await alice.api.messages(group.id)).last_seq, 20);
      session.close();
    } finally {
      await t.stop();
    }
  },
);

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

testBothDatabases(
  "sub with batch: true replays in msgs frames (many messages each), then synced, then live — the seam holds",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const info = await (await fetch(`${t.url}/v1/info`)).json();
      assert.ok(info.features.includes("batched_replay"), "announced in /v1/info");
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      const stored = 600; // more than one replay page (250, then 1,000)
      const live = 60;
      const sendRange = async (from: number, to: number) => {
        for (let i = from; i < to; i += 20) {
          await Promise.all(
            Array.from(
              { length: Math.min(20, to - i) },
              (_, k) => alice.api.send(group.id, { body: cipher(16), client_id: `x${i + k}` }),
            ),
          );
        }
      };
      await sendRange(0, stored);
      const since = 7;
      const ws = await RawSocket.authed(t.wsUrl, bob.token);
      ws.send({ t: "sub", groups: [group.id], since: { [group.id]: since }, batch: true });
      const sending = sendRange(stored, stored + live);
      const seqs: number[] = [];
      const kinds: string[] = [];
      let syncedSeq = -1;
      let seenAtSynced = -1;
      for (let frames = 0; frames < 10_000 && seqs.length < stored + live - since; frames++) {
        const f = await ws.next((f) => ["msg", "msgs", "synced"].includes(f.t), 20_000);
        kinds.push(f.t);
        if (f.t === "msg") seqs.push(Number(f.seq));
        if (f.t === "msgs") {
          assert.equal(f.group, group.id);
          const messages = f.messages as { seq: number; group: string; body: string }[];
          assert.ok(messages.every((m) => m.group === group.id && m.body.length > 0));
          seqs.push(...messages.map((m) => m.seq));
        }
        if (f.t === "synced") {
          syncedSeq = Number(f.seq);
          seenAtSynced = seqs.length === 0 ? since : seqs[seqs.length - 1];
        }
      }
      await sending;
      assert.deepEqual(
        seqs,
        Array.from({ length: stored + live - since }, (_, i) => since + i + 1),
        "every message once, in order, across replay frames and live ones",
      );
      assert.ok(kinds.includes("msgs"), "the replay came in msgs frames");
      assert.ok(
        kinds.filter((k) => k === "msgs").length < (stored - since) / 10,
        `far fewer frames than messages (${kinds.length} frames)`,
      );
      assert.equal(syncedSeq, seenAtSynced, "synced marks the end of the replay");
      assert.ok(await ws.none((f) => f.t === "msg" || f.t === "msgs", 200), "no duplicates");
      ws.close();
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "a read-back asked for (kick) while a replay is being written is not lost: what was committed unannounced meanwhile comes before synced",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const alice = await newDevice(t.url);
      const group = await alice.api.createGroup();
      await alice.api.send(group.id, { body: cipher(16), client_id: "c1" });
      const got: number[] = [];
      let synced = -1;
      let release!: () => void;
      const held = new Promise<void>((resolve) => release = resolve);
      let replays = 0;
      // The subscription's sink, as a connection's: the first replayed page is held unwritten.
      const sub = new Subscription(
        group.id,
        {
          device: alice.device,
          open: true,
          deliver: (m) => (got.push(m.seq), true),
          replay: async (texts) => {
            if (replays++ === 0) await held;
            for (const text of texts) got.push(JSON.parse(text).seq);
            return true;
          },
          synced: (_group, seq) => synced = seq,
        },
        0,
        replayReader(t.database.db),
        () => t.clock.now(),
        (error) => {
          throw error;
        },
      );
      sub.start();
      await waitFor(() => replays === 1);
      // Committed after the page was read, its bus event missed (an instance alone that did not
      // announce it, or a listener that was cut): the bus asks every subscription to read back.
      await alice.api.send(group.id, { body: cipher(16), client_id: "c2" });
      sub.kick();
      release();
      await waitFor(() => synced !== -1);
      assert.deepEqual(got, [1, 2]);
      assert.equal(synced, 2);
      sub.close();
    } finally {
      await t.stop();
    }
  },
);

/**
 * Tests of relay/push/outbox.ts, the push policy, through a relay and a local Web Push service:
 * coalescing (one pending wake-up per device; the group id kept only when one group has news)
 * and the minimum interval; retries after 5xx with exponential backoff and `Retry-After`;
 * removal of gone targets; no push to a connected device (at enqueue and at dispatch), to the
 * sender, to devices a targeted message does not address, or to inactive devices; wake-ups that
 * survive a restart; the lifecycle wake-up of idle devices close to deletion; and, on Postgres
 * with two instances, no push to a device connected elsewhere and dispatch by the leader only.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../../relay/base/clock.ts";
import { backoffMs } from "../../../relay/push/outbox.ts";
import { cipher, newDevice, type TestDevice } from "../../helpers/accounts.ts";
import { testCertificates, waitUntil, WebPushService } from "../../helpers/push.ts";
import { startTestRelay, testBothDatabases, type TestRelay } from "../../helpers/relay.ts";
import { RawSocket } from "../../helpers/ws.ts";

type Setup = {
  t: TestRelay & { databaseUrl?: string };
  service: WebPushService;
  clock: ManualClock;
  stop(): Promise<void>;
};

/** A relay whose devices' Web Push subscriptions live on a local service. */
async function setup(
  db: "pglite" | "postgres",
  env: Record<string, string> = {},
  reuse: { dataDir?: string; databaseUrl?: string; clock?: ManualClock; service?: WebPushService } =
    {},
): Promise<Setup> {
  const clock = reuse.clock ?? new ManualClock(Date.now());
  const service = reuse.service ?? await WebPushService.start(() => clock.now());
  const { ca } = await testCertificates();
  const t = await startTestRelay({
    db,
    clock,
    dataDir: reuse.dataDir,
    databaseUrl: reuse.databaseUrl,
    env: { SEALPOST_UNIFIEDPUSH_ALLOW_PRIVATE: "true", SEALPOST_PUSH_MIN_INTERVAL: "30s", ...env },
    push: { caCerts: [ca] },
  });
  return {
    t,
    service,
    clock,
    stop: async () => {
      await t.stop();
      if (!reuse.service) await service.close();
    },
  };
}

/** Registers a device with a Web Push subscription; returns its endpoint. */
async function subscribed(s: Setup, device: TestDevice): Promise<string> {
  const sub = await s.service.subscribe();
  await device.api.setPushTarget({ kind: "webpush", ...sub });
  return sub.endpoint;
}

function outbox(s: Setup) {
  return s.t.database.db.selectFrom("push_outbox").selectAll().orderBy("device_id").execute();
}

testBothDatabases(
  "wake-ups coalesce per device and respect the minimum interval",
  async (db) => {
    const s = await setup(db);
    try {
      const alice = await newDevice(s.t.url, "alice");
      const bob = await newDevice(s.t.url, "bob");
      const one = await alice.api.createGroup({ members: [bob.account] });
      const two = await alice.api.createGroup({ members: [bob.account] });
      const endpoint = await subscribed(s, bob);

      await alice.api.send(one.id, { body: cipher() });
      await s.service.waitFor(1);
      await s.t.relay.push.idle();
      assert.deepEqual(s.service.to(endpoint)[0].payload, { sealpost: "wake", group: one.id });

      // Within the interval: news in two groups, one pending wake-up without a group id.
      await alice.api.send(one.id, { body: cipher() });
      await alice.api.send(two.id, { body: cipher() });
      await alice.api.send(two.id, { body: cipher() });
      await s.t.relay.push.idle();
      const [pending, ...more] = await outbox(s);
      assert.equal(more.length, 0, "at most one pending wake-up per device");
      assert.equal(pending.device_id, bob.device);
      assert.equal(pending.group_id, null, "several groups: no group id");
      const target = await s.t.database.db.selectFrom("push_targets").select("last_push_at")
        .where("device_id", "=", bob.device).executeTakeFirstOrThrow();
      assert.equal(pending.due_at, target.last_push_at! + 30_000, "due after the interval");
      assert.equal((await s.t.relay.push.dispatchOnce()).claimed, 0, "not due yet");
      assert.equal(s.service.deliveries.length, 1);

      s.clock.advance(30_000);
      const report = await s.t.relay.push.dispatchOnce();
      assert.equal(report.sent, 1);
      assert.equal(s.service.deliveries.length, 2);
      assert.deepEqual(s.service.deliveries[1].payload, { sealpost: "wake" });
      assert.deepEqual(await outbox(s), []);

      // News in one group keeps its id.
      await alice.api.send(two.id, { body: cipher() });
      await alice.api.send(two.id, { body: cipher() });
      await s.t.relay.push.idle();
      assert.equal((await outbox(s))[0].group_id, two.id);
      s.clock.advance(30_000);
      await s.t.relay.push.dispatchOnce();
      assert.deepEqual(s.service.deliveries[2].payload, { sealpost: "wake", group: two.id });
      assert.deepEqual(s.service.rejected, []);
    } finally {
      await s.stop();
    }
  },
);

testBothDatabases(
  "a 5xx is retried with exponential backoff; Retry-After is honoured",
  async (db) => {
    const s = await setup(db);
    try {
      const alice = await newDevice(s.t.url, "alice");
      const bob = await newDevice(s.t.url, "bob");
      const group = await alice.api.createGroup({ members: [bob.account] });
      const endpoint = await subscribed(s, bob);
      const path = new URL(endpoint).pathname;
      s.service.answers.set(path, [
        { status: 503 },
        { status: 500 },
        { status: 429, headers: { "retry-after": "120" } },
      ]);

      await alice.api.send(group.id, { body: cipher() });
      await s.t.relay.push.idle();
      let [row] = await outbox(s);
      assert.equal(row.attempts, 1);
      assert.match(row.last_error ?? "", /HTTP 503/);
      const first = row.due_at - s.clock.now();
      assert.ok(first >= backoffMs(1, 0) && first <= backoffMs(1, 1), `first retry in ${first} ms`);
      assert.equal((await s.t.relay.push.dispatchOnce()).claimed, 0);

      s.clock.advance(first);
      assert.equal((await s.t.relay.push.dispatchOnce()).retried, 1);
      [row] = await outbox(s);
      assert.equal(row.attempts, 2);
      const second = row.due_at - s.clock.now();
      assert.ok(second >= backoffMs(2, 0) && second <= backoffMs(2, 1), `doubled: ${second} ms`);

      s.clock.advance(second);
      await s.t.relay.push.dispatchOnce();
      [row] = await outbox(s);
      assert.equal(row.due_at - s.clock.now(), 120_000, "Retry-After beats a shorter backoff");

      s.clock.advance(120_000);
      assert.equal((await s.t.relay.push.dispatchOnce()).sent, 1);
      assert.equal(s.service.to(endpoint).length, 1);
      assert.deepEqual(await outbox(s), []);
      const stats = await s.t.database.db.selectFrom("push_stats").selectAll()
        .where("provider", "=", "webpush").executeTakeFirstOrThrow();
      assert.deepEqual(
        [Number(stats.sent), Number(stats.retried), Number(stats.failed), Number(stats.gone)],
        [1, 3, 0, 0],
      );
    } finally {
      await s.stop();
    }
  },
);

testBothDatabases("a target the push service calls gone (404, 410) is removed", async (db) => {
  const s = await setup(db);
  try {
    const alice = await newDevice(s.t.url, "alice");
    const bob = await newDevice(s.t.url, "bob");
    const carol = await newDevice(s.t.url, "carol");
    const group = await alice.api.createGroup({ members: [bob.account, carol.account] });
    const bobEndpoint = await subscribed(s, bob);
    const carolEndpoint = await subscribed(s, carol);
    s.service.answers.set(new URL(bobEndpoint).pathname, [{ status: 410 }]);
    s.service.answers.set(new URL(carolEndpoint).pathname, [{ status: 404 }]);
    await alice.api.send(group.id, { body: cipher() });
    await waitUntil(
      "both targets removed",
      async () =>
        (await s.t.database.db.selectFrom("push_targets").select("device_id").execute()).length ===
          0,
    );
    assert.deepEqual(await outbox(s), []);
    assert.equal(s.service.deliveries.length, 0);
    // The device may register a new subscription.
    await subscribed(s, bob);
  } finally {
    await s.stop();
  }
});

testBothDatabases(
  "no push to a connected device, the sender, unaddressed or inactive devices",
  async (db) => {
    const s = await setup(db, {
      SEALPOST_INACTIVE_AFTER: "1h",
      SEALPOST_DELETE_AFTER: "2h",
      SEALPOST_PUSH_MIN_INTERVAL: "1s",
    });
    try {
      const alice = await newDevice(s.t.url, "alice");
      const bob = await newDevice(s.t.url, "bob");
      const carol = await newDevice(s.t.url, "carol");
      const group = await alice.api.createGroup({ members: [bob.account, carol.account] });
      const aliceEndpoint = await subscribed(s, alice);
      const bobEndpoint = await subscribed(s, bob);
      const carolEndpoint = await subscribed(s, carol);

      // Bob is connected: only carol is woken (and never alice, the sender).
      const ws = await RawSocket.authed(s.t.wsUrl, bob.token);
      try {
        await alice.api.send(group.id, { body: cipher() });
        await s.service.waitFor(1);
        await s.t.relay.push.idle();
        assert.equal(s.service.to(carolEndpoint).length, 1);
        assert.equal(s.service.to(bobEndpoint).length, 0, "bob is connected");
        assert.equal(s.service.to(aliceEndpoint).length, 0, "the sender is not woken");
        assert.deepEqual(await outbox(s), []);
      } finally {
        ws.close();
        await ws.closed;
      }

      // A message for carol only does not wake bob.
      s.clock.advance(2_000);
      await alice.api.send(group.id, { body: cipher(), to: [carol.device] });
      await s.service.waitFor(2);
      await s.t.relay.push.idle();
      assert.equal(s.service.to(bobEndpoint).length, 0);
      assert.equal(s.service.to(carolEndpoint).length, 2);

      // Queued while offline, connected before it was due: dropped at dispatch.
      await alice.api.send(group.id, { body: cipher(), to: [carol.device] });
      await s.t.relay.push.idle();
      assert.equal((await outbox(s)).length, 1, "carol's wake-up waits for the interval");
      const carolWs = await RawSocket.authed(s.t.wsUrl, carol.token);
      try {
        s.clock.advance(2_000);
        const report = await s.t.relay.push.dispatchOnce();
        assert.deepEqual([report.claimed, report.skipped, report.sent], [1, 1, 0]);
        assert.equal(s.service.to(carolEndpoint).length, 2);
      } finally {
        carolWs.close();
        await carolWs.closed;
      }

      // An inactive device (no activity for inactive_after) gets no wake-up.
      s.clock.advance(3_600_000);
      await alice.api.send(group.id, { body: cipher() });
      await s.t.relay.push.idle();
      assert.deepEqual(await outbox(s), []);
      assert.equal(s.service.deliveries.length, 2);
    } finally {
      await s.stop();
    }
  },
);

testBothDatabases("pending wake-ups survive a restart", async (db) => {
  const first = await setup(db);
  const alice = await newDevice(first.t.url, "alice");
  const bob = await newDevice(first.t.url, "bob");
  const group = await alice.api.createGroup({ members: [bob.account] });
  const endpoint = await subscribed(first, bob);
  await alice.api.send(group.id, { body: cipher() });
  await first.service.waitFor(1);
  await first.t.relay.push.idle();
  await alice.api.send(group.id, { body: cipher() });
  await first.t.relay.push.idle();
  assert.equal((await outbox(first)).length, 1, "waiting for the interval");
  await first.t.stop();

  const second = await setup(db, {}, {
    dataDir: first.t.dataDir,
    databaseUrl: first.t.databaseUrl,
    clock: first.clock,
    service: first.service,
  });
  try {
    assert.equal((await outbox(second)).length, 1, "still queued after the restart");
    second.clock.advance(30_000);
    assert.equal((await second.t.relay.push.dispatchOnce()).sent, 1);
    assert.equal(second.service.to(endpoint).length, 2);
  } finally {
    await second.stop();
    await first.service.close();
  }
});

testBothDatabases(
  "an idle device close to deletion gets one wake-up from the lifecycle job",
  async (db) => {
    const s = await setup(db, {
      SEALPOST_INACTIVE_AFTER: "10s",
      SEALPOST_DELETE_AFTER: "20s",
      SEALPOST_PUSH_MIN_INTERVAL: "1s",
    });
    try {
      const bob = await newDevice(s.t.url, "bob");
      const dave = await newDevice(s.t.url, "dave");
      const endpoint = await subscribed(s, bob);
      await subscribed(s, dave);

      // 12 s idle: inactive, not yet close to deletion (the wake-up comes at 15 s).
      s.clock.advance(12_000);
      await s.t.relay.sweeper.runOnce();
      await s.t.relay.push.idle();
      assert.deepEqual(await outbox(s), []);

      s.clock.advance(4_000); // 16 s idle
      await dave.api.groups(); // dave checks in by himself
      await s.t.relay.sweeper.runOnce();
      await s.service.waitFor(1);
      await s.t.relay.push.idle();
      const [wake] = s.service.to(endpoint);
      assert.deepEqual(wake.payload, { sealpost: "wake" });
      assert.equal(s.service.deliveries.length, 1, "only the idle device");

      // One wake-up per idle spell.
      s.clock.advance(1_000);
      await s.t.relay.sweeper.runOnce();
      await s.t.relay.push.idle();
      assert.deepEqual(await outbox(s), []);
      assert.equal(s.service.deliveries.length, 1);

      // The woken app checks in: it is kept, and a later idle spell gets a new wake-up.
      await bob.api.groups();
      s.clock.advance(6_000);
      await s.t.relay.sweeper.runOnce();
      const kept = await s.t.database.db.selectFrom("devices").select("id")
        .where("id", "=", bob.device).executeTakeFirst();
      assert.ok(kept, "bob was kept");
      s.clock.advance(10_000); // 16 s after the check-in
      await dave.api.groups();
      await s.t.relay.sweeper.runOnce();
      await s.service.waitFor(2);

      // Ignored, bob is deleted with his target.
      s.clock.advance(5_000);
      await dave.api.groups();
      const report = await s.t.relay.sweeper.runOnce();
      assert.equal(report?.devicesDeleted, 1);
      const targets = await s.t.database.db.selectFrom("push_targets").select("device_id")
        .execute();
      assert.deepEqual(targets.map((r) => r.device_id), [dave.device]);
    } finally {
      await s.stop();
    }
  },
);

testBothDatabases(
  "two instances: no push to a device connected to the other; the leader alone dispatches",
  async () => {
    const clock = new ManualClock(Date.now());
    const service = await WebPushService.start(() => clock.now());
    const a = await setup("postgres", { SEALPOST_PUSH_MIN_INTERVAL: "1s" }, { clock, service });
    const b = await setup(
      "postgres",
      { SEALPOST_PUSH_MIN_INTERVAL: "1s" },
      { clock, service, databaseUrl: a.t.databaseUrl },
    );
    try {
      await waitUntil(
        "a leader",
        () => a.t.relay.leadership.isLeader() !== b.t.relay.leadership.isLeader(),
      );
      const alice = await newDevice(a.t.url, "alice");
      const bob = await newDevice(a.t.url, "bob");
      const group = await alice.api.createGroup({ members: [bob.account] });
      const endpoint = await subscribed(a, bob);

      // Bob is connected to instance b; alice sends through a.
      const ws = await RawSocket.authed(b.t.wsUrl, bob.token);
      try {
        await waitUntil(
          "bob's presence on b",
          async () => (await a.t.relay.registry.onlineAnywhere([bob.device])).has(bob.device),
        );
        await alice.api.send(group.id, { body: cipher() });
        await a.t.relay.push.idle();
        await b.t.relay.push.idle();
        assert.deepEqual(await outbox(a), []);
      } finally {
        ws.close();
        await ws.closed;
      }
      await waitUntil(
        "bob offline everywhere",
        async () => !(await a.t.relay.registry.onlineAnywhere([bob.device])).has(bob.device),
      );

      clock.advance(2_000);
      await alice.api.send(group.id, { body: cipher() });
      await service.waitFor(1);
      await a.t.relay.push.idle();
      await b.t.relay.push.idle();
      assert.equal(service.to(endpoint).length, 1, "exactly one wake-up");
      const leader = a.t.relay.leadership.isLeader() ? a : b;
      const follower = leader === a ? b : a;
      const sent = async (s: Setup) =>
        (await s.t.relay.deps.metrics.pushResults.get()).values
          .filter((v) => v.labels.result === "sent").reduce((n, v) => n + v.value, 0);
      assert.equal(await sent(leader), 1);
      assert.equal(await sent(follower), 0, "followers never dispatch");
    } finally {
      await b.t.stop();
      await a.t.stop();
      await service.close();
    }
  },
  { only: ["postgres"] },
);

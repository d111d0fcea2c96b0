/**
 * Tests of relay/activity.ts: `last_seen_at` is kept in memory per request and written to the
 * database only in batches, yet every read of the directory reports the latest activity.
 * Runs on PGlite and on real Postgres.
 */

import assert from "node:assert/strict";
import { generateKeyPair, HttpClient } from "../../client/mod.ts";
import { ActivityTracker } from "../../relay/activity.ts";
import { silentLogger } from "../../relay/base/log.ts";
import { ManualClock } from "../../relay/base/clock.ts";
import { registered, relaySuite, type RunningRelay } from "../helpers/http.ts";

async function storedLastSeen(t: RunningRelay, device: string): Promise<number> {
  const row = await t.relay.deps.db.selectFrom("devices").select("last_seen_at")
    .where("id", "=", device).executeTakeFirstOrThrow();
  return row.last_seen_at;
}

// Kept to the millisecond here, so batching can be checked exactly; coarse storage is below.
relaySuite("device activity", { env: { SEALPOST_LAST_SEEN_GRANULARITY: "1ms" } }, {
  "last_seen_at is not written to the database per request, only by activity.flush()": async (
    t,
  ) => {
    const registeredAt = t.clock.now();
    const { me, api } = await registered(t);
    await t.relay.deps.activity.flush();
    assert.equal(await storedLastSeen(t, me.device.id), registeredAt);

    t.clock.advance(60_000);
    for (let i = 0; i < 5; i++) await api.devices(me.account);
    const seenAt = t.clock.now();
    assert.equal(await storedLastSeen(t, me.device.id), registeredAt, "no write per request");

    // The directory still reports the unflushed activity.
    const { devices } = await api.devices(me.account);
    assert.equal(devices[0].last_seen_at, seenAt);

    assert.equal(await t.relay.deps.activity.flush(), 1, "one device in the batch");
    assert.equal(await storedLastSeen(t, me.device.id), seenAt);
    assert.equal(await t.relay.deps.activity.flush(), 0, "nothing pending");
  },

  "login and registration count as activity": async (t) => {
    const root = await generateKeyPair();
    const a = await registered(t, { account: root });
    const b = await registered(t, { account: root });
    t.clock.advance(5_000);
    await new HttpClient(t.url).login(b.me);
    const loginAt = t.clock.now();
    t.clock.advance(5_000);
    await b.api.register(b.me);
    const registerAt = t.clock.now();
    await t.relay.deps.activity.flush();
    assert.equal(await storedLastSeen(t, b.me.device.id), registerAt);
    assert.ok(registerAt > loginAt);
    assert.ok(await storedLastSeen(t, a.me.device.id) < loginAt);
  },

  "activity.flush() writes many devices at once and never moves back": async (t) => {
    const root = await generateKeyPair();
    const devices = await Promise.all([0, 1, 2, 3].map(() => registered(t, { account: root })));
    await t.relay.deps.activity.flush();
    // A second tracker (another instance) that saw older activity flushes after us.
    const older = t.clock.now() - 10_000;
    const other = new ActivityTracker(
      t.relay.deps.db,
      new ManualClock(older),
      silentLogger,
      t.config.inactiveAfter,
    );
    for (const { me } of devices) other.touch(me.device.id);
    t.clock.advance(30_000);
    for (const { me, api } of devices) await api.devices(me.account);
    assert.equal(await t.relay.deps.activity.flush(), 4);
    assert.equal(await other.flush(), 4);
    for (const { me } of devices) {
      assert.equal(await storedLastSeen(t, me.device.id), t.clock.now());
    }
  },
});

Deno.test("ActivityTracker flushes at a tenth of inactive_after, at most once a minute", () => {
  const make = (ms: number) => new ActivityTracker(null!, new ManualClock(0), silentLogger, ms);
  assert.equal(make(90 * 86_400_000).intervalMs, 60_000);
  assert.equal(make(5 * 60_000).intervalMs, 30_000);
  assert.equal(make(10_000).intervalMs, 1_000);
  assert.equal(make(100).intervalMs, 50);
});

relaySuite("coarse last_seen_at", {}, {
  "last_seen_at is stored and shown rounded down to SEALPOST_LAST_SEEN_GRANULARITY (1h)": async (
    t,
  ) => {
    const HOUR = 3_600_000;
    t.clock.set((Math.floor(t.clock.now() / HOUR) + 1) * HOUR + 17 * 60_000 + 123);
    const { me, api } = await registered(t);
    const registeredAt = t.clock.now();
    const stored = await storedLastSeen(t, me.device.id);
    assert.equal(stored % HOUR, 0, "registration stores the hour, not the moment");
    assert.equal(stored, registeredAt - (17 * 60_000 + 123));
    t.clock.advance(50 * 60_000); // into the next hour
    await api.devices(me.account);
    const { devices } = await api.devices(me.account);
    assert.equal(devices[0].last_seen_at, stored + HOUR, "unflushed activity shows coarse too");
    await t.relay.deps.activity.flush();
    assert.equal(await storedLastSeen(t, me.device.id), stored + HOUR);
  },
});

Deno.test("ActivityTracker caps the granularity at a tenth of inactive_after", () => {
  const make = (inactive: number, granularity: number) =>
    new ActivityTracker(null!, new ManualClock(0), silentLogger, inactive, granularity);
  assert.equal(make(90 * 86_400_000, 3_600_000).granularityMs, 3_600_000);
  assert.equal(make(3_600_000, 3_600_000).granularityMs, 360_000);
  assert.equal(make(3_600_000, 3_600_000).coarse(1_000_000), 720_000);
  assert.equal(make(3_600_000, 0).coarse(1_000_001), 1_000_001);
});

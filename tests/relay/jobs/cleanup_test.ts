/**
 * Tests of relay/jobs/cleanup.ts through the sweeper, with the injectable clock and thresholds of
 * seconds: an idle device turns inactive, then is deleted with its tokens (which then answer
 * `401 unknown_device`, like its login), cursors and memberships; an account left without
 * devices leaves its groups (an heir becomes owner, a group left empty is deleted); an active
 * device is untouched; every run writes an audit-log row. PGlite and Postgres.
 */

import assert from "node:assert/strict";
import { HttpClient } from "../../../client/mod.ts";
import type { BusEvent } from "../../../relay/bus/bus.ts";
import { cipher, newAccount, newDevice } from "../../helpers/accounts.ts";
import { assertRejects, call } from "../../helpers/http.ts";
import { startTestRelay, testBothDatabases } from "../../helpers/relay.ts";

const ENV = { SEALPOST_INACTIVE_AFTER: "10s", SEALPOST_DELETE_AFTER: "20s" };

testBothDatabases(
  "an idle device becomes inactive, then is deleted; an active device is untouched",
  async (db) => {
    const t = await startTestRelay({ db, env: ENV });
    try {
      const idle = await newDevice(t.url, "idle");
      const active = await newDevice(t.url, "active");
      const [keep, drop] = await newAccount(t.url, 2); // one account, one device stays
      const shared = await idle.api.createGroup({ members: [active.account] });
      t.clock.advance(1);
      await idle.api.putMember(shared.id, keep.account);
      const lonely = await idle.api.createGroup();
      await idle.api.send(shared.id, { body: cipher() });
      await drop.api.ack({ [shared.id]: 1 });
      const events: BusEvent[] = [];
      t.relay.deps.bus.subscribe((event) => events.push(event));

      const status = async (device: string, account: string) =>
        (await active.api.devices(account)).devices.find((d) => d.id === device)?.status;
      t.clock.advance(11_000);
      await active.api.groups(); // activity
      await keep.api.groups();
      assert.equal(await status(idle.device, idle.account), "inactive");
      assert.equal(await status(active.device, active.account), "active");
      const early = await t.relay.sweeper.runOnce();
      assert.equal(early?.devicesDeleted, 0);
      assert.equal(early?.devicesInactive, 2, "idle and drop");

      t.clock.advance(10_000);
      await active.api.groups();
      await keep.api.groups();
      const dry = await t.relay.sweeper.runOnce({ dryRun: true });
      assert.equal(dry?.devicesDeleted, 2);
      assert.equal(dry?.accountsDeleted, 1);
      assert.equal(
        await status(idle.device, idle.account),
        "inactive",
        "a dry run deletes nothing",
      );

      const report = await t.relay.sweeper.runOnce();
      assert.equal(report?.devicesDeleted, 2);
      assert.equal(report?.accountsDeleted, 1);
      assert.equal(report?.groupsDeleted, 1, "the group only the removed account was in");
      assert.equal(report?.membershipsRemoved, 1);

      // The deleted devices: login and old tokens answer 401 unknown_device.
      for (const gone of [idle, drop]) {
        await assertRejects(new HttpClient(t.url).login(gone.identity), 401, "unknown_device");
        const stale = await call(t.url, "GET", "/v1/groups", { token: gone.token });
        assert.equal(stale.status, 401);
        assert.equal(stale.body.error.code, "unknown_device");
      }
      // The active devices are untouched.
      assert.equal((await active.api.groups()).length, 1);
      assert.equal(await status(active.device, active.account), "active");
      assert.deepEqual(
        (await keep.api.devices(keep.account)).devices.map((d) => d.id),
        [keep.device],
      );
      // The removed account left the shared group; the oldest remaining member became owner.
      const group = await active.api.group(shared.id);
      assert.deepEqual(
        group.members.map((m) => [m.account, m.role]).sort(),
        [[active.account, "owner"], [keep.account, "member"]].sort(),
      );
      await assertRejects(active.api.group(lonely.id), 404, "not_found");
      const rows = await t.database.db.selectFrom("cursors").select("device_id")
        .where("device_id", "=", drop.device).execute();
      assert.equal(rows.length, 0, "cursors go with the device");

      const kinds = events.map((e) =>
        e.kind === "membership"
          ? `${e.event} ${e.group === shared.id ? "shared" : "lonely"}`
          : e.kind
      );
      assert.ok(kinds.includes("revoked"), "live connections of deleted devices are closed");
      assert.ok(kinds.includes("member_removed shared"));
      assert.ok(kinds.includes("role_changed shared"));
      assert.ok(kinds.includes("deleted lonely"));

      const audit = await t.database.db.selectFrom("audit_log").selectAll()
        .where("action", "=", "sweep").orderBy("id").execute();
      assert.equal(audit.length, 2, "one row per run, dry runs excluded");
      assert.equal(JSON.parse(audit[1].detail).devicesDeleted, 2);
      assert.equal(audit[1].actor, "sweeper");

      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      assert.match(metrics, /^sealpost_devices_deleted_total 2$/m);
      assert.match(metrics, /^sealpost_accounts_deleted_total 1$/m);
      assert.match(metrics, /^sealpost_devices\{status="active"\} 2$/m);
      assert.match(metrics, /^sealpost_sweep_duration_seconds_count 2$/m);

      // A deleted device may register again, as new.
      const again = await new HttpClient(t.url).register(idle.identity);
      assert.equal(again.status, 201);
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases("activity not yet flushed spares a device from deletion", async (db) => {
  const t = await startTestRelay({ db, env: ENV });
  try {
    const device = await newDevice(t.url);
    await t.relay.deps.activity.flush();
    t.clock.advance(25_000);
    await device.api.groups(); // noted in memory only
    const report = await t.relay.sweeper.runOnce();
    assert.equal(report?.devicesDeleted, 0);
    assert.equal((await device.api.groups()).length, 0);
  } finally {
    await t.stop();
  }
});

testBothDatabases("revoked devices are kept for audit, never deleted by cleanup", async (db) => {
  const t = await startTestRelay({ db, env: ENV });
  try {
    const [a, b] = await newAccount(t.url, 2);
    await a.api.revokeDevice(b.device);
    t.clock.advance(15_000);
    await a.api.groups();
    t.clock.advance(15_000);
    await a.api.groups();
    const report = await t.relay.sweeper.runOnce();
    assert.equal(report?.devicesDeleted, 0);
    const rows = await t.database.db.selectFrom("devices").select("id")
      .where("id", "=", b.device).execute();
    assert.equal(rows.length, 1);
    await assertRejects(new HttpClient(t.url).login(b.identity), 403, "device_revoked");
  } finally {
    await t.stop();
  }
});

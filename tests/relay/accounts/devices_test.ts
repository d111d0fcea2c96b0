/**
 * Tests of relay/accounts/devices.ts through the HTTP API (PROTOCOL.md "Device directory"): who may see an
 * account's devices, revocation, and device status. Runs on PGlite and on real Postgres.
 *
 * Groups are inserted directly into the database here: the visibility rule only reads
 * `group_members`, and these tests do not depend on the groups API.
 */

import assert from "node:assert/strict";
import { createDeviceIdentity, generateKeyPair, HttpClient } from "../../../client/mod.ts";
import { randomId } from "../../../relay/base/encoding.ts";
import type { Db } from "../../../relay/store/database.ts";
import {
  assertErrorBody,
  assertRejects,
  call,
  registered,
  relaySuite,
} from "../../helpers/http.ts";

/** Inserts a group with `accounts` as members, as the groups API would. */
async function shareGroup(db: Db, now: number, ...accounts: string[]): Promise<string> {
  const id = randomId(16);
  await db.insertInto("groups").values({ id, last_seq: 0, retention_s: 86_400, created_at: now })
    .execute();
  await db.insertInto("group_members").values(accounts.map((account_id, i) => ({
    group_id: id,
    account_id,
    role: i === 0 ? "owner" as const : "member" as const,
    added_at: now,
  }))).execute();
  return id;
}

/**
 * Short lifecycle thresholds, so a step can move the clock past them; `last_seen_at` kept to the
 * millisecond so the status flips exactly at the threshold (coarse storage: activity_test.ts).
 */
const LIFECYCLE = {
  env: {
    SEALPOST_INACTIVE_AFTER: "1h",
    SEALPOST_DELETE_AFTER: "2h",
    SEALPOST_LAST_SEEN_GRANULARITY: "1ms",
  },
};

relaySuite("device directory", LIFECYCLE, {
  "devices() lists every device of the caller's own account": async (t) => {
    const root = await generateKeyPair();
    const phone = await registered(t, { account: root, name: "phone", platform: "ios" });
    t.clock.advance(1000);
    const laptop = await registered(t, { account: root, name: "laptop" });
    const { devices } = await laptop.api.devices(root.id);
    assert.deepEqual(devices.map((d) => d.id), [phone.me.device.id, laptop.me.device.id]);
    const [first, second] = devices;
    assert.deepEqual(Object.keys(first).sort(), [
      "cert",
      "created_at",
      "id",
      "last_seen_at",
      "name",
      "platform",
      "status",
    ]);
    assert.equal(first.name, "phone");
    assert.equal(first.platform, "ios");
    assert.equal(first.cert, phone.me.cert);
    assert.equal(first.status, "active");
    assert.equal(second.platform, null);
    assert.equal(second.created_at, first.created_at + 1000);
  },

  "devices() answers 404 not_found for an unrelated, unknown or malformed account": async (t) => {
    const me = await registered(t);
    const stranger = await registered(t);
    const unknown = (await generateKeyPair()).id;
    for (const account of [stranger.me.account, unknown, "not-a-key", "A".repeat(44)]) {
      const response = await call(t.url, "GET", `/v1/accounts/${account}/devices`, {
        token: me.api.token!,
      });
      assertErrorBody(response, 404, "not_found");
    }
    // The answer for a real, hidden account is the same as for one that does not exist.
    const hidden = await call(t.url, "GET", `/v1/accounts/${stranger.me.account}/devices`, {
      token: me.api.token!,
    });
    const missing = await call(t.url, "GET", `/v1/accounts/${unknown}/devices`, {
      token: me.api.token!,
    });
    assert.deepEqual(hidden.body, missing.body);
  },

  "devices() shows an account that shares a group with the caller": async (t) => {
    const ann = await registered(t, { name: "ann" });
    const bob = await registered(t, { name: "bob" });
    const carol = await registered(t);
    const store = t.relay.deps.db;
    const group = await shareGroup(store, t.clock.now(), ann.me.account, bob.me.account);

    const seen = await ann.api.devices(bob.me.account);
    assert.deepEqual(seen.devices.map((d) => d.name), ["bob"]);
    assert.equal((await bob.api.devices(ann.me.account)).devices[0].name, "ann");
    // Carol shares no group with either.
    await assertRejects(carol.api.devices(ann.me.account), 404, "not_found");
    await assertRejects(ann.api.devices(carol.me.account), 404, "not_found");

    // Once Bob leaves the group, Ann no longer sees his devices.
    await store.deleteFrom("group_members").where("group_id", "=", group)
      .where("account_id", "=", bob.me.account).execute();
    await assertRejects(ann.api.devices(bob.me.account), 404, "not_found");
  },

  "revokeDevice() answers 204 for another own device, which the directory then shows revoked":
    async (t) => {
      const root = await generateKeyPair();
      const phone = await registered(t, { account: root });
      const old = await registered(t, { account: root });
      const removed = await call(t.url, "DELETE", `/v1/devices/${old.me.device.id}`, {
        token: phone.api.token!,
      });
      assert.equal(removed.status, 204);
      assert.equal(removed.body, null);

      const { devices } = await phone.api.devices(root.id);
      const byId = new Map(devices.map((d) => [d.id, d]));
      assert.equal(byId.get(old.me.device.id)?.status, "revoked");
      assert.equal(byId.get(phone.me.device.id)?.status, "active");

      // Revoking again is idempotent; the revoked device is kept for audit.
      await phone.api.revokeDevice(old.me.device.id);
      assert.equal((await phone.api.devices(root.id)).devices.length, 2);
      await assertRejects(old.api.devices(root.id), 403, "device_revoked");
    },

  "revokeDevice() answers 404 not_found for another account's device or an unknown one": async (
    t,
  ) => {
    const me = await registered(t);
    const other = await registered(t);
    const nobody = (await createDeviceIdentity()).device.id;
    for (const device of [other.me.device.id, nobody, "garbage", "me"]) {
      const response = await call(t.url, "DELETE", `/v1/devices/${device}`, {
        token: me.api.token!,
      });
      assertErrorBody(response, 404, "not_found");
    }
    // The other account's device is untouched.
    const { devices } = await other.api.devices(other.me.account);
    assert.equal(devices[0].status, "active");
    // Revoking needs a token.
    const anonymous = await call(t.url, "DELETE", `/v1/devices/${other.me.device.id}`);
    assertErrorBody(anonymous, 401, "unauthenticated");
  },

  "a device may revoke itself, after which its token answers 403": async (t) => {
    const { me, api } = await registered(t);
    await api.revokeDevice(me.device.id);
    await assertRejects(api.devices(me.account), 403, "device_revoked");
    await assertRejects(new HttpClient(t.url).login(me), 403, "device_revoked");
  },

  // Last: it moves the clock past the lifecycle thresholds.
  "a device shows as inactive after SEALPOST_INACTIVE_AFTER without activity, active once seen":
    async (t) => {
      const root = await generateKeyPair();
      const desk = await registered(t, { account: root });
      const idle = await registered(t, { account: root });
      const status = async () =>
        new Map((await desk.api.devices(root.id)).devices.map((d) => [d.id, d.status]));

      t.clock.advance(3_600_000 - 1);
      assert.equal((await status()).get(idle.me.device.id), "active");
      t.clock.advance(1);
      const after = await status();
      assert.equal(after.get(idle.me.device.id), "inactive");
      assert.equal(after.get(desk.me.device.id), "active", "the caller was just active");

      // Any authenticated call counts as activity, flushed or not.
      await idle.api.devices(root.id);
      assert.equal((await status()).get(idle.me.device.id), "active");
      await t.relay.deps.activity.flush();
      assert.equal((await status()).get(idle.me.device.id), "active");

      // Revoked wins over inactive.
      t.clock.advance(2 * 3_600_000);
      await desk.api.revokeDevice(idle.me.device.id);
      assert.equal((await status()).get(idle.me.device.id), "revoked");
    },
});

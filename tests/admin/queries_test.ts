/**
 * @module
 * What the dashboard reads (`admin/queries.ts`) and changes (`adminRevokeDevice`,
 * `adminSetRetention`, `adminDeleteGroup`), on both databases: device statuses moving with the
 * clock and the run-time thresholds, search filters, group sizes, and the audit trail.
 */

import assert from "node:assert/strict";
import {
  accountDetail,
  countDevicesByStatus,
  deviceDetail,
  groupDetail,
  listAudit,
  listGroupsForAdmin,
  searchDevices,
  storageUse,
  storedCounts,
} from "../../admin/queries.ts";
import { adminRevokeDevice } from "../../relay/accounts/devices.ts";
import { adminDeleteGroup, adminSetRetention } from "../../relay/accounts/groups.ts";
import { cipher, newAccount, newDevice } from "../helpers/accounts.ts";
import { startTestRelay, testBothDatabases } from "../helpers/relay.ts";

const DAY = 86_400_000;

testBothDatabases("admin queries count devices by status as time passes", async (kind) => {
  const t = await startTestRelay({
    db: kind,
    env: { SEALPOST_INACTIVE_AFTER: "10d", SEALPOST_DELETE_AFTER: "20d" },
  });
  try {
    const deps = t.relay.deps;
    const [a1, a2] = await newAccount(t.url, 2);
    const solo = await newDevice(t.url, "solo");
    await deps.activity.flush();
    assert.deepEqual(await countDevicesByStatus(deps), {
      active: 3,
      inactive: 0,
      pending_deletion: 0,
      revoked: 0,
    });
    assert.ok(await adminRevokeDevice(deps, a2.device, "test"));
    assert.equal(await adminRevokeDevice(deps, "no-such-device", "test"), false);
    t.clock.advance(11 * DAY);
    await solo.api.login(solo.identity); // activity keeps solo active
    await deps.activity.flush();
    assert.deepEqual(await countDevicesByStatus(deps), {
      active: 1,
      inactive: 1,
      pending_deletion: 0,
      revoked: 1,
    });
    t.clock.advance(10 * DAY);
    assert.equal((await countDevicesByStatus(deps)).pending_deletion, 1);

    // A run-time change of the threshold moves devices at once.
    await deps.settings.update({ inactive_after_s: 30 * 86_400, delete_after_s: 60 * 86_400 }, "t");
    assert.deepEqual(await countDevicesByStatus(deps), {
      active: 2,
      inactive: 0,
      pending_deletion: 0,
      revoked: 1,
    });
    const inactiveNow = await searchDevices(deps, { status: "active" });
    assert.deepEqual(inactiveNow.map((d) => d.id).sort(), [a1.device, solo.device].sort());
    assert.deepEqual(
      (await searchDevices(deps, { status: "revoked" })).map((d) => d.id),
      [a2.device],
    );
    assert.deepEqual(
      (await searchDevices(deps, { q: a1.account.slice(0, 8) })).map((d) => d.id).sort(),
      [a1.device, a2.device].sort(),
      "search by account id prefix",
    );
    assert.deepEqual((await searchDevices(deps, { q: "sol" })).map((d) => d.id), [solo.device]);
    assert.deepEqual(await searchDevices(deps, { q: "%" }), [], "LIKE wildcards are literal");

    const counts = await storedCounts(deps);
    assert.equal(counts.accounts, 2);
    assert.ok((await storageUse(deps)).database_bytes > 0);
    const audit = await listAudit(deps, { action: "device." });
    assert.equal(audit.length, 1);
    assert.equal(audit[0].actor, "test");
    assert.deepEqual(audit[0].detail.after, "revoked");
  } finally {
    await t.stop();
  }
});

testBothDatabases("admin queries show groups with message count and bytes", async (kind) => {
  // A loopback push endpoint (never called here) needs the private-address allowance.
  const t = await startTestRelay({ db: kind, env: { SEALPOST_UNIFIEDPUSH_ALLOW_PRIVATE: "true" } });
  try {
    const deps = t.relay.deps;
    const [owner, other] = await newAccount(t.url, 2);
    const friend = await newDevice(t.url, "friend");
    const group = await owner.api.createGroup({ members: [friend.account] });
    await owner.api.send(group.id, { body: cipher(100), client_id: "a" });
    await owner.api.send(group.id, { body: cipher(50), client_id: "b" });
    const [listed] = await listGroupsForAdmin(deps);
    assert.equal(listed.id, group.id);
    assert.equal(listed.messages, 2);
    assert.equal(listed.bytes, 150);
    assert.equal(listed.members, 2);
    assert.equal((await listGroupsForAdmin(deps, { q: friend.account })).length, 1);
    assert.equal((await listGroupsForAdmin(deps, { q: "zzzz" })).length, 0);

    const detail = await groupDetail(deps, group.id);
    assert.equal(detail?.member_list.length, 2);
    assert.equal(detail?.member_list.find((m) => m.account === owner.account)?.devices, 2);

    assert.equal((await deviceDetail(deps, other.device))?.push_kind, null);
    const key = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
      "deriveBits",
    ]);
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", key.publicKey));
    const b64 = (bytes: Uint8Array) =>
      btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
        /=+$/,
        "",
      );
    await other.api.setPushTarget({
      kind: "webpush",
      endpoint: "https://127.0.0.1:9/push/1",
      keys: { p256dh: b64(raw), auth: b64(crypto.getRandomValues(new Uint8Array(16))) },
    });
    const device = await deviceDetail(deps, other.device);
    assert.equal(device?.push_kind, "webpush");
    assert.deepEqual(device?.groups.map((g) => g.id), [group.id], "groups via the account");
    assert.deepEqual(device?.siblings.map((s) => s.id), [owner.device]);
    assert.equal((await accountDetail(deps, friend.account))?.groups[0].role, "member");

    assert.equal(await adminSetRetention(deps, group.id, 3600, "t"), 3600);
    assert.equal((await owner.api.group(group.id)).retention_s, 3600);
    assert.equal(await adminSetRetention(deps, "nope", 3600, "t"), null);
    assert.ok(await adminDeleteGroup(deps, group.id, "t"));
    assert.equal(await groupDetail(deps, group.id), null);
    const actions = (await listAudit(deps)).map((e) => e.action);
    assert.deepEqual(actions.slice(0, 2), ["group.delete", "group.retention"]);
  } finally {
    await t.stop();
  }
});

/**
 * Tests of relay/accounts/key_packages.ts through the HTTP API (PROTOCOL.md "Key packages"): upload and
 * counts, validation and limits, claims (one package per active device, last-resort fallback,
 * no shared group needed, per-caller rate limit), removal with revoked and deleted devices, and
 * exactly-once hand-out under many concurrent claimers. Runs on PGlite and on real Postgres.
 */

import assert from "node:assert/strict";
import { generateKeyPair, HttpClient } from "../../../client/mod.ts";
import { cleanup } from "../../../relay/jobs/cleanup.ts";
import { adminRevokeDevice } from "../../../relay/accounts/devices.ts";
import { MAX_STORED_PACKAGES } from "../../../relay/accounts/key_packages.ts";
import { cipher } from "../../helpers/accounts.ts";
import {
  assertErrorBody,
  assertRejects,
  call,
  registered,
  relaySuite,
  type RunningRelay,
  withRelay,
} from "../../helpers/http.ts";
import { testBothDatabases } from "../../helpers/relay.ts";

/** `n` distinct stand-in packages. */
function packages(n: number, size = 48): string[] {
  return Array.from({ length: n }, () => cipher(size));
}

/** Rows stored for `device`, straight from the database. */
async function storedRows(t: RunningRelay, device: string): Promise<number> {
  const rows = await t.relay.deps.db.selectFrom("key_packages").select("id")
    .where("device_id", "=", device).execute();
  return rows.length;
}

relaySuite(
  "key packages",
  {
    env: {
      SEALPOST_MAX_MESSAGE_BYTES: "1KiB",
      SEALPOST_RATE_CLAIM: "5/min",
      SEALPOST_INACTIVE_AFTER: "1h",
      SEALPOST_DELETE_AFTER: "3h",
    },
  },
  {
    "uploadKeyPackages() stores packages that keyPackageCounts() reports per kind": async (t) => {
      const { api } = await registered(t);
      assert.deepEqual(await api.keyPackageCounts(), {});
      await api.uploadKeyPackages("mls", packages(3));
      await api.uploadKeyPackages("mls", packages(2), cipher());
      await api.uploadKeyPackages("signal.prekey", packages(1));
      const raw = await call(t.url, "GET", "/v1/devices/me/keys", { token: api.token! });
      assert.equal(raw.status, 200);
      assert.deepEqual(raw.body, {
        kinds: {
          mls: { available: 5, last_resort: true },
          "signal.prekey": { available: 1, last_resort: false },
        },
      });
      const put = await call(t.url, "PUT", "/v1/devices/me/keys", {
        token: api.token!,
        body: { kind: "only-last-resort", packages: [], last_resort: cipher() },
      });
      assert.equal(put.status, 204);
      assert.equal(put.body, null);
      assert.deepEqual((await api.keyPackageCounts())["only-last-resort"], {
        available: 0,
        last_resort: true,
      });
    },

    "uploadKeyPackages() answers 400 invalid_request for a bad kind, list or package": async (
      t,
    ) => {
      const { api } = await registered(t);
      const bad: unknown[] = [
        { packages: packages(1) },
        { kind: "mls" },
        { kind: "", packages: packages(1) },
        { kind: "MLS", packages: packages(1) },
        { kind: "k".repeat(65), packages: packages(1) },
        { kind: "has space", packages: packages(1) },
        { kind: "mls", packages: packages(101) },
        { kind: "mls", packages: ["not base64url!"] },
        { kind: "mls", packages: [""] },
        { kind: "mls", packages: "AAAA" },
        { kind: "mls", packages: [], last_resort: "" },
        { kind: "mls", packages: [], last_resort: "a+b/" },
      ];
      for (const body of bad) {
        const response = await call(t.url, "PUT", "/v1/devices/me/keys", {
          token: api.token!,
          body,
        });
        assertErrorBody(response, 400, "invalid_request");
      }
      assert.deepEqual(await api.keyPackageCounts(), {});
      const anonymous = await call(t.url, "PUT", "/v1/devices/me/keys", {
        body: { kind: "mls", packages: packages(1) },
      });
      assertErrorBody(anonymous, 401, "unauthenticated");
    },

    "uploadKeyPackages() answers 413 too_large for a package over max_message_bytes": async (
      t,
    ) => {
      const { api } = await registered(t);
      // Exactly the limit (1 KiB decoded) is fine.
      await api.uploadKeyPackages("mls", [cipher(1024)], cipher(1024));
      const over = await call(t.url, "PUT", "/v1/devices/me/keys", {
        token: api.token!,
        body: { kind: "mls", packages: [cipher(10), cipher(1025)] },
      });
      assertErrorBody(over, 413, "too_large");
      const overLastResort = await call(t.url, "PUT", "/v1/devices/me/keys", {
        token: api.token!,
        body: { kind: "mls", packages: [cipher(10)], last_resort: cipher(1025) },
      });
      assertErrorBody(overLastResort, 413, "too_large");
      // Nothing of a rejected call is stored.
      assert.deepEqual(await api.keyPackageCounts(), { mls: { available: 1, last_resort: true } });
    },

    "uploadKeyPackages() answers 409 conflict past 1,000 stored and stores nothing": async (t) => {
      const { me, api } = await registered(t);
      const claimer = await registered(t);
      for (let i = 0; i < MAX_STORED_PACKAGES / 100; i++) {
        await api.uploadKeyPackages("mls", packages(100, 8));
      }
      const full = await call(t.url, "PUT", "/v1/devices/me/keys", {
        token: api.token!,
        body: { kind: "mls", packages: packages(1, 8) },
      });
      assertErrorBody(full, 409, "conflict");
      assert.match(full.body.error.message, /1000/);
      // Other kinds and the last resort have room of their own.
      await api.uploadKeyPackages("mls", [], cipher());
      await api.uploadKeyPackages("other", packages(1));
      assert.deepEqual((await api.keyPackageCounts()).mls, { available: 1000, last_resort: true });
      // A claim makes room for exactly one more.
      await claimer.api.claimKeyPackages(me.account, "mls");
      await api.uploadKeyPackages("mls", packages(1, 8));
      await assertRejects(api.uploadKeyPackages("mls", packages(1, 8)), 409, "conflict");
    },

    "claimKeyPackages() hands out each package once, oldest first, then the last resort": async (
      t,
    ) => {
      const { me, api } = await registered(t);
      const stranger = await registered(t);
      const uploaded = packages(2);
      const [lastResort, newer] = [cipher(), cipher()];
      await api.uploadKeyPackages("mls", uploaded, lastResort);
      await api.uploadKeyPackages("mls", [], newer);

      // No shared group is needed to claim: an inviter claims before any group exists.
      const raw = await call(t.url, "POST", `/v1/accounts/${me.account}/keys/claim`, {
        token: stranger.api.token!,
        body: { kind: "mls" },
      });
      assert.equal(raw.status, 200);
      assert.deepEqual(raw.body, {
        packages: [{ device: me.device.id, package: uploaded[0], last_resort: false }],
      });
      assert.deepEqual(await stranger.api.claimKeyPackages(me.account, "mls"), [
        { device: me.device.id, package: uploaded[1], last_resort: false },
      ]);
      // Exhausted: the newest last resort, every time, and it stays.
      for (let i = 0; i < 2; i++) {
        assert.deepEqual(await stranger.api.claimKeyPackages(me.account, "mls"), [
          { device: me.device.id, package: newer, last_resort: true },
        ]);
      }
      assert.deepEqual(await api.keyPackageCounts(), { mls: { available: 0, last_resort: true } });
      assert.equal(await storedRows(t, me.device.id), 1);
    },

    "claimKeyPackages() returns one package per active device and leaves out empty ones": async (
      t,
    ) => {
      const root = await generateKeyPair();
      // Registered a second apart: packages come oldest device first.
      const phone = await registered(t, { account: root });
      t.clock.advance(1000);
      const laptop = await registered(t, { account: root });
      t.clock.advance(1000);
      const tablet = await registered(t, { account: root });
      const revoked = await registered(t, { account: root });
      const claimer = await registered(t);
      const [p, l, r] = [cipher(), cipher(), cipher()];
      await phone.api.uploadKeyPackages("mls", [p]);
      await laptop.api.uploadKeyPackages("mls", [], l);
      await revoked.api.uploadKeyPackages("mls", [r]);
      await tablet.api.uploadKeyPackages("other-kind", packages(1));
      await phone.api.revokeDevice(revoked.me.device.id);

      const claimed = await claimer.api.claimKeyPackages(root.id, "mls");
      assert.deepEqual(claimed, [
        { device: phone.me.device.id, package: p, last_resort: false },
        { device: laptop.me.device.id, package: l, last_resort: true },
      ]);
      // An account with nothing of that kind: an empty list, not an error.
      assert.deepEqual(await claimer.api.claimKeyPackages(root.id, "unused"), []);
      // The claimer's own account works the same (its other devices, and itself).
      await claimer.api.uploadKeyPackages("mls", [], cipher());
      assert.equal((await claimer.api.claimKeyPackages(claimer.me.account, "mls")).length, 1);
    },

    "claimKeyPackages() answers 404 for an unknown or malformed account, 400 for a bad kind":
      async (t) => {
        const claimer = await registered(t);
        const unknown = (await generateKeyPair()).id;
        for (const account of [unknown, "not-a-key"]) {
          const response = await call(t.url, "POST", `/v1/accounts/${account}/keys/claim`, {
            token: claimer.api.token!,
            body: { kind: "mls" },
          });
          assertErrorBody(response, 404, "not_found");
        }
        const badKind = await call(t.url, "POST", `/v1/accounts/${unknown}/keys/claim`, {
          token: claimer.api.token!,
          body: { kind: "Bad Kind" },
        });
        assertErrorBody(badKind, 400, "invalid_request");
        const anonymous = await call(t.url, "POST", `/v1/accounts/${unknown}/keys/claim`, {
          body: { kind: "mls" },
        });
        assertErrorBody(anonymous, 401, "unauthenticated");
      },

    "claimKeyPackages() answers 429 rate_limited with Retry-After past SEALPOST_RATE_CLAIM": async (
      t,
    ) => {
      const owner = await registered(t);
      await owner.api.uploadKeyPackages("mls", packages(10));
      const greedy = await registered(t);
      const other = await registered(t);
      // This suite allows 5 claims a minute per calling device.
      for (let i = 0; i < 5; i++) await greedy.api.claimKeyPackages(owner.me.account, "mls");
      const limited = await call(t.url, "POST", `/v1/accounts/${owner.me.account}/keys/claim`, {
        token: greedy.api.token!,
        body: { kind: "mls" },
      });
      assertErrorBody(limited, 429, "rate_limited");
      assert.ok(Number(limited.headers.get("retry-after")) >= 1);
      assert.ok(limited.body.error.retry_after_ms > 0);
      assert.match(
        await t.relay.deps.metrics.text(),
        /sealpost_rate_limited_total\{limit="claim"\} [1-9]/,
      );
      // Probing unknown accounts costs the same.
      const probe = await call(t.url, "POST", `/v1/accounts/${other.me.account}/keys/claim`, {
        token: greedy.api.token!,
        body: { kind: "mls" },
      });
      assertErrorBody(probe, 429, "rate_limited");
      // The limit is per caller: another device still claims, and nothing was drained.
      assert.equal((await other.api.claimKeyPackages(owner.me.account, "mls")).length, 1);
      assert.equal((await owner.api.keyPackageCounts()).mls.available, 4);
      // A minute later the caller may claim again.
      t.clock.advance(60_000);
      assert.equal((await greedy.api.claimKeyPackages(owner.me.account, "mls")).length, 1);
    },

    "an admin's change of rate_claim applies without a restart": async (t) => {
      const owner = await registered(t);
      await owner.api.uploadKeyPackages("mls", [], cipher());
      const caller = await registered(t);
      await t.relay.deps.settings.set("rate_claim", "1/h", "test");
      try {
        await caller.api.claimKeyPackages(owner.me.account, "mls");
        await assertRejects(
          caller.api.claimKeyPackages(owner.me.account, "mls"),
          429,
          "rate_limited",
        );
      } finally {
        await t.relay.deps.settings.set("rate_claim", "5/min", "test");
      }
    },

    "revoking a device removes its key packages": async (t) => {
      const root = await generateKeyPair();
      const keeper = await registered(t, { account: root });
      const lost = await registered(t, { account: root });
      const stolen = await registered(t, { account: root });
      for (const d of [lost, stolen]) await d.api.uploadKeyPackages("mls", packages(3), cipher());
      await keeper.api.revokeDevice(lost.me.device.id);
      assert.equal(await storedRows(t, lost.me.device.id), 0);
      assert.ok(await adminRevokeDevice(t.relay.deps, stolen.me.device.id, "test"));
      assert.equal(await storedRows(t, stolen.me.device.id), 0);
      // A revoked device can no longer upload.
      await assertRejects(lost.api.uploadKeyPackages("mls", packages(1)), 403, "device_revoked");
    },

    // Last: these move the clock past the lifecycle thresholds.
    "claimKeyPackages() leaves out inactive devices": async (t) => {
      const root = await generateKeyPair();
      const idle = await registered(t, { account: root });
      const busy = await registered(t, { account: root });
      await idle.api.uploadKeyPackages("mls", packages(1));
      await busy.api.uploadKeyPackages("mls", packages(1));
      t.clock.advance(90 * 60_000);
      await busy.api.keyPackageCounts(); // activity
      const claimer = await registered(t);
      const claimed = await claimer.api.claimKeyPackages(root.id, "mls");
      assert.deepEqual(claimed.map((c) => c.device), [busy.me.device.id]);
      assert.equal(await storedRows(t, idle.me.device.id), 1);
    },

    "cleanup removes packages of deleted devices and leftovers of revoked ones": async (t) => {
      const gone = await registered(t);
      await gone.api.uploadKeyPackages("mls", packages(2), cipher());
      const revoked = await registered(t);
      await revoked.api.revokeDevice(revoked.me.device.id);
      // As if an upload had raced the revocation.
      await t.relay.deps.db.insertInto("key_packages").values({
        device_id: revoked.me.device.id,
        kind: "mls",
        package: new Uint8Array([1, 2, 3]),
        last_resort: false,
        created_at: t.clock.now(),
      }).execute();
      t.clock.advance(4 * 3_600_000);
      await t.relay.deps.activity.flush();
      const report = await cleanup(t.relay.deps, t.clock.now());
      assert.ok(report.devicesDeleted >= 1);
      assert.equal(await storedRows(t, gone.me.device.id), 0);
      assert.equal(await storedRows(t, revoked.me.device.id), 0);
      await assertRejects(gone.api.keyPackageCounts(), 401, "unknown_device");
    },
  },
);

testBothDatabases(
  "claimKeyPackages() hands out every one-time package exactly once to 60 concurrent claimers",
  (db) =>
    withRelay(db, {
      env: { SEALPOST_RATE_CLAIM: "off", SEALPOST_CLAIM_PER_TARGET: "off" },
    }, async (t) => {
      const root = await generateKeyPair();
      const owners = [
        await registered(t, { account: root }),
        await registered(t, { account: root }),
      ];
      const uploaded = new Map<string, Set<string>>();
      const lastResorts = new Map<string, string>();
      for (const owner of owners) {
        const mine = packages(200, 16);
        for (let i = 0; i < mine.length; i += 100) {
          await owner.api.uploadKeyPackages("mls", mine.slice(i, i + 100));
        }
        const lastResort = cipher(16);
        await owner.api.uploadKeyPackages("mls", [], lastResort);
        uploaded.set(owner.me.device.id, new Set(mine));
        lastResorts.set(owner.me.device.id, lastResort);
      }
      const claimers: HttpClient[] = [];
      for (let i = 0; i < 60; i++) claimers.push((await registered(t)).api);

      // 60 claimers × 4 rounds = 240 claims, all in flight together, for 200 packages a device.
      const results = await Promise.all(
        claimers.flatMap((api) =>
          Array.from({ length: 4 }, () => api.claimKeyPackages(root.id, "mls"))
        ),
      );
      for (const owner of owners) {
        const device = owner.me.device.id;
        const got = results.map((claim) => {
          const mine = claim.filter((c) => c.device === device);
          assert.equal(mine.length, 1, "one package per device per claim");
          return mine[0];
        });
        const oneTime = got.filter((c) => !c.last_resort).map((c) => c.package);
        assert.equal(new Set(oneTime).size, oneTime.length, "no package handed out twice");
        assert.equal(oneTime.length, 200, "every package handed out before the last resort");
        assert.deepEqual(new Set(oneTime), uploaded.get(device));
        const fallback = got.filter((c) => c.last_resort);
        assert.equal(fallback.length, 40);
        assert.ok(fallback.every((c) => c.package === lastResorts.get(device)));
        assert.deepEqual((await owner.api.keyPackageCounts()).mls, {
          available: 0,
          last_resort: true,
        });
      }
    }),
);

testBothDatabases(
  "two fresh devices cannot drain another account's one-time packages (SEALPOST_CLAIM_PER_TARGET)",
  (db) =>
    withRelay(db, {
      env: { SEALPOST_RATE_CLAIM: "off", SEALPOST_CLAIM_PER_TARGET: "10/h" },
    }, async (t) => {
      const victim = await registered(t);
      const lastResort = cipher(16);
      await victim.api.uploadKeyPackages("mls", packages(100, 16), lastResort);
      const drainers = [(await registered(t)).api, (await registered(t)).api];
      const claims = await Promise.all(
        drainers.flatMap((api) =>
          Array.from({ length: 60 }, () => api.claimKeyPackages(victim.me.account, "mls"))
        ),
      );
      const got = claims.map((claim) => {
        assert.equal(claim.length, 1, "every claim still gets a package");
        return claim[0];
      });
      assert.equal(got.filter((c) => !c.last_resort).length, 10, "10 one-time packages an hour");
      assert.ok(got.filter((c) => c.last_resort).every((c) => c.package === lastResort));
      assert.deepEqual((await victim.api.keyPackageCounts()).mls, {
        available: 90,
        last_resort: true,
      });
      // The budget is per kind and refills with time.
      t.clock.advance(3_600_000);
      const later = await drainers[0].claimKeyPackages(victim.me.account, "mls");
      assert.equal(later[0].last_resort, false);
    }),
);

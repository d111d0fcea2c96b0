/**
 * Tests of relay/push/fcm.ts against a local Google OAuth token endpoint and FCM v1 API (TLS,
 * a test CA the relay trusts): the service-account JWT assertion is verified with the account's
 * public key, the access token is cached across sends and exchanged again after a 401, the
 * message is data-only, an `UNREGISTERED` token is removed, and a malformed service account
 * stops the start. PGlite and Postgres.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../../relay/base/clock.ts";
import { ConfigError, loadConfig } from "../../../relay/config/config.ts";
import type { Db } from "../../../relay/store/database.ts";
import { AddressGuard } from "../../../relay/push/address_guard.ts";
import { openPushSenders } from "../../../relay/push/open.ts";
import { cipher, newDevice } from "../../helpers/accounts.ts";
import { testCertificates, waitUntil } from "../../helpers/push.ts";
import { FCM_UNREGISTERED, FcmService } from "../../helpers/push_services.ts";
import { startTestRelay, testBothDatabases } from "../../helpers/relay.ts";

testBothDatabases(
  "offline Android devices get data-only FCM messages after a verified OAuth exchange",
  async (db) => {
    const clock = new ManualClock(Date.now());
    const fcm = await FcmService.start(() => clock.now());
    const file = await Deno.makeTempFile({ suffix: ".json" });
    await Deno.writeTextFile(file, JSON.stringify(fcm.account!.json));
    const { ca } = await testCertificates();
    const t = await startTestRelay({
      db,
      clock,
      env: { SEALPOST_FCM_SERVICE_ACCOUNT_FILE: file, SEALPOST_PUSH_MIN_INTERVAL: "10s" },
      push: { caCerts: [ca], fcmApiUrl: fcm.origin },
    });
    try {
      const info = await (await fetch(`${t.url}/v1/info`)).json();
      assert.equal(info.push.fcm, true);

      const alice = await newDevice(t.url, "alice");
      const bob = await newDevice(t.url, "bob");
      const carol = await newDevice(t.url, "carol");
      const group = await alice.api.createGroup({ members: [bob.account, carol.account] });
      await bob.api.setPushTarget({ kind: "fcm", token: "bob-registration-token:APA91b" });
      await carol.api.setPushTarget({ kind: "fcm", token: "carol-registration-token:APA91b" });

      await alice.api.send(group.id, { body: cipher() });
      await waitUntil("two FCM messages", () => fcm.deliveries.length === 2);
      assert.deepEqual(fcm.rejected, []);
      assert.equal(fcm.exchanges.length, 1, "one token exchange serves both sends");
      const toBob = fcm.deliveries.find((d) => d.token.startsWith("bob"))!;
      assert.deepEqual(toBob.message.data, { sealpost: "wake" }, "Google is not told the group");
      assert.deepEqual(toBob.message.android, {
        priority: "high",
        ttl: "86400s",
        collapse_key: "sealpost-wake",
      });
      assert.equal(
        (toBob.message.apns as { headers: Record<string, string> }).headers["apns-push-type"],
        "background",
      );
      await t.relay.push.idle();

      // The cached token is reused; after FCM refuses it (401) a new exchange follows.
      clock.advance(20_000);
      await alice.api.send(group.id, { body: cipher() });
      await waitUntil("two more", () => fcm.deliveries.length === 4);
      assert.equal(fcm.exchanges.length, 1, "the access token is cached");
      await t.relay.push.idle();
      fcm.revokeTokens();
      clock.advance(20_000);
      await alice.api.send(group.id, { body: cipher() });
      await t.relay.push.idle();
      assert.equal(fcm.deliveries.length, 4, "refused with 401 first");
      const retry = await t.database.db.selectFrom("push_outbox").selectAll().execute();
      assert.equal(retry.length, 2, "both wake-ups wait for a retry");
      assert.ok(retry.every((r) => r.attempts === 1 && /FCM 401/.test(r.last_error ?? "")));
      clock.advance(15_000); // past the first backoff step
      await t.relay.push.dispatchOnce();
      assert.equal(fcm.deliveries.length, 6);
      assert.equal(fcm.exchanges.length, 2, "a new token after the 401");
      await t.relay.push.idle();

      // An unregistered token is removed; the other device is still woken.
      clock.advance(20_000);
      fcm.answers.set("bob-registration-token:APA91b", [FCM_UNREGISTERED]);
      await alice.api.send(group.id, { body: cipher() });
      await waitUntil(
        "bob's target to be removed",
        async () =>
          !(await t.database.db.selectFrom("push_targets").select("device_id")
            .where("device_id", "=", bob.device).executeTakeFirst()),
      );
      await waitUntil("carol's wake-up", () => fcm.deliveries.length === 7);
      assert.ok(fcm.deliveries[6].token.startsWith("carol"));
    } finally {
      await t.stop();
      await fcm.close();
      await Deno.remove(file);
    }
  },
);

Deno.test("a malformed FCM service account stops the start with one clear line", async () => {
  const guard = new AddressGuard({ allowPrivate: false });
  const clock = new ManualClock();
  const noDb = null as unknown as Db; // never reached: credentials are checked first
  const cases: [string, RegExp][] = [
    ["{not json", /it is not JSON/],
    [JSON.stringify({ project_id: "p", client_email: "e@x" }), /it lacks private_key/],
    [
      JSON.stringify({ project_id: "p", client_email: "e@x", private_key: "nope" }),
      /its private_key is not an RSA key/,
    ],
  ];
  for (const [json, why] of cases) {
    await assert.rejects(
      openPushSenders(loadConfig({ SEALPOST_FCM_SERVICE_ACCOUNT: json }), noDb, clock, guard),
      (error) =>
        error instanceof ConfigError &&
        /^Cannot use the FCM service account: /.test(error.message) && why.test(error.message) &&
        !error.message.includes(json),
    );
  }
  await assert.rejects(
    openPushSenders(
      loadConfig({ SEALPOST_FCM_SERVICE_ACCOUNT_FILE: "/nonexistent/firebase.json" }),
      noDb,
      clock,
      guard,
    ),
    (error) =>
      error instanceof ConfigError &&
      /^Cannot read SEALPOST_FCM_SERVICE_ACCOUNT_FILE: /.test(error.message),
  );
});

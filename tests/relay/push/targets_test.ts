/**
 * Tests of `PUT/DELETE /v1/devices/me/push` (relay/api/push.ts, relay/push/targets.ts) and of
 * what operators see: the four target shapes are validated (`400 invalid_request` naming the
 * field), a provider this relay has not configured is refused naming the settings it needs,
 * `DELETE` is idempotent, a revoked device loses its target, and the push queue and per-provider
 * counts show on `/metrics` and the admin overview. PGlite and Postgres.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../../relay/base/clock.ts";
import { toBase64Url } from "../../../relay/base/encoding.ts";
import { pushOverview } from "../../../relay/push/stats.ts";
import { overviewHtml } from "../../helpers/admin.ts";
import { cipher, newAccount, newDevice } from "../../helpers/accounts.ts";
import { assertErrorBody, call } from "../../helpers/http.ts";
import { testCertificates, WebPushService } from "../../helpers/push.ts";
import { startTestRelay, testBothDatabases } from "../../helpers/relay.ts";

const PASSWORD = "correct horse battery staple";

async function p256dh(): Promise<string> {
  const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
    "deriveBits",
  ]) as CryptoKeyPair;
  return toBase64Url(new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)));
}

testBothDatabases(
  "push targets: validation, unconfigured providers, delete, revoke",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_UNIFIEDPUSH_ALLOW_PRIVATE: "true" } });
    try {
      const me = await newDevice(t.url, "me");
      const put = (body: unknown) =>
        call(t.url, "PUT", "/v1/devices/me/push", { token: me.token, body });
      const key = await p256dh();
      const auth = toBase64Url(crypto.getRandomValues(new Uint8Array(16)));

      // Unconfigured providers name what the operator must set.
      let response = await put({ kind: "apns", token: "ab".repeat(32), topic: "com.example.chat" });
      assertErrorBody(response, 400, "invalid_request");
      assert.match(response.body.error.message, /apns push is not configured/);
      assert.match(response.body.error.message, /SEALPOST_APNS_KEY_FILE/);
      response = await put({ kind: "fcm", token: "fcm-token" });
      assertErrorBody(response, 400, "invalid_request");
      assert.match(response.body.error.message, /SEALPOST_FCM_SERVICE_ACCOUNT_FILE/);

      // Malformed bodies name the field.
      const bad: [unknown, RegExp][] = [
        [{}, /kind/],
        [{ kind: "carrier-pigeon" }, /kind/],
        [
          { kind: "webpush", endpoint: "http://push.example/x", keys: { p256dh: key, auth } },
          /endpoint/,
        ],
        [{ kind: "webpush", endpoint: "https://push.example/x" }, /keys/],
        [
          { kind: "webpush", endpoint: "https://push.example/x", keys: { p256dh: "x", auth } },
          /p256dh/,
        ],
        [
          {
            kind: "webpush",
            endpoint: "https://push.example/x",
            keys: { p256dh: "B".repeat(87), auth },
          },
          /p256dh/,
        ],
        [
          {
            kind: "webpush",
            endpoint: "https://push.example/x",
            keys: { p256dh: key, auth: "AA" },
          },
          /auth/,
        ],
        [{ kind: "unifiedpush", endpoint: "ftp://up.example/x" }, /endpoint/],
        [{ kind: "unifiedpush", endpoint: "https://user:pw@up.example/x" }, /endpoint/],
        [{ kind: "fcm", token: "" }, /token/],
      ];
      for (const [body, field] of bad) {
        response = await put(body);
        assertErrorBody(response, 400, "invalid_request");
        assert.match(response.body.error.message, field, JSON.stringify(body));
      }

      // A good target, replaced by another, then deleted (twice: idempotent).
      response = await put({
        kind: "webpush",
        endpoint: "https://127.0.0.1:1/push/1",
        keys: { p256dh: key, auth },
      });
      assert.equal(response.status, 204);
      await me.api.setPushTarget({ kind: "unifiedpush", endpoint: "http://127.0.0.1:2/up" });
      const rows = await t.database.db.selectFrom("push_targets").selectAll().execute();
      assert.equal(rows.length, 1);
      assert.equal(rows[0].kind, "unifiedpush");
      assert.equal(rows[0].p256dh, null, "the old keys went with the old target");
      await me.api.deletePushTarget();
      await me.api.deletePushTarget();
      assert.equal(
        (await t.database.db.selectFrom("push_targets").selectAll().execute()).length,
        0,
      );
      response = await call(t.url, "PUT", "/v1/devices/me/push", { body: { kind: "fcm" } });
      assertErrorBody(response, 401, "unauthenticated");

      // Revoking a device removes its target.
      const [keep, lost] = await newAccount(t.url, 2);
      await lost.api.setPushTarget({ kind: "unifiedpush", endpoint: "http://127.0.0.1:3/up" });
      await keep.api.revokeDevice(lost.device);
      const left = await t.database.db.selectFrom("push_targets").select("device_id")
        .where("device_id", "=", lost.device).execute();
      assert.deepEqual(left, []);
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "the push queue and per-provider counts show on /metrics and the overview",
  async (db) => {
    const clock = new ManualClock(Date.now());
    const service = await WebPushService.start(() => clock.now());
    const { ca } = await testCertificates();
    const t = await startTestRelay({
      db,
      clock,
      env: { SEALPOST_UNIFIEDPUSH_ALLOW_PRIVATE: "true", SEALPOST_ADMIN_PASSWORD: PASSWORD },
      push: { caCerts: [ca] },
    });
    try {
      const alice = await newDevice(t.url, "alice");
      const bob = await newDevice(t.url, "bob");
      const carol = await newDevice(t.url, "carol");
      const group = await alice.api.createGroup({ members: [bob.account, carol.account] });
      const sub = await service.subscribe();
      await bob.api.setPushTarget({ kind: "webpush", ...sub });
      const failing = await service.subscribe();
      service.answers.set(new URL(failing.endpoint).pathname, [{ status: 400 }, { status: 400 }]);
      await carol.api.setPushTarget({ kind: "webpush", ...failing });
      await alice.api.send(group.id, { body: cipher() });
      await service.waitFor(1);
      await t.relay.push.idle();
      // A second message: bob's wake-up waits for the minimum interval, carol's fails again.
      await alice.api.send(group.id, { body: cipher() });
      await t.relay.push.idle();

      const overview = await pushOverview(t.relay.deps);
      assert.equal(overview.queued, 1);
      const webpush = overview.providers.find((p) => p.provider === "webpush")!;
      assert.deepEqual([webpush.targets, webpush.sent, webpush.failed], [2, 1, 2]);

      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      assert.match(metrics, /^sealpost_push_queue_depth 1$/m);
      assert.match(
        metrics,
        /^sealpost_push_wakeups_total\{provider="webpush",result="sent"\} 1$/m,
      );
      assert.match(
        metrics,
        /^sealpost_push_wakeups_total\{provider="webpush",result="failed"\} 2$/m,
      );

      const html = await overviewHtml(t.url);
      assert.match(html, /data-stat="push_queue"><dt>[^<]*<\/dt><dd>1<\/dd>/);
      const row = /<tr data-push-provider="webpush">(.*?)<\/tr>/s.exec(html)?.[1] ?? "";
      assert.match(row, /data-push="sent">1</);
      assert.match(row, /data-push="failed">2</);
    } finally {
      await t.stop();
      await service.close();
    }
  },
);

/**
 * Tests of relay/push/apns.ts against a local APNs provider API over HTTP/2 and TLS (a test CA
 * the relay trusts): background pushes with the right headers and payload, an ES256 provider
 * token signed with the `.p8` key and reused within Apple's 20–60 minute window, sandbox and
 * production hosts, removal of a token APNs calls `Unregistered`, `fetch` negotiating h2 by
 * ALPN, and the start refusing a missing or malformed key. PGlite and Postgres.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../../relay/base/clock.ts";
import { ConfigError, loadConfig } from "../../../relay/config/config.ts";
import type { Db } from "../../../relay/store/database.ts";
import { AddressGuard } from "../../../relay/push/address_guard.ts";
import { ApnsSender } from "../../../relay/push/apns.ts";
import { openPushSenders } from "../../../relay/push/open.ts";
import { cipher, newDevice } from "../../helpers/accounts.ts";
import { assertRejects } from "../../helpers/http.ts";
import { testCertificates, waitUntil } from "../../helpers/push.ts";
import { apnsKey, ApnsService } from "../../helpers/push_services.ts";
import { startTestRelay, testBothDatabases } from "../../helpers/relay.ts";

const hexToken = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0"))
    .join("");

testBothDatabases(
  "offline iOS devices get background pushes over HTTP/2 with a valid provider token",
  async (db) => {
    const clock = new ManualClock(Date.now());
    const key = await apnsKey();
    const keyFile = await Deno.makeTempFile({ suffix: ".p8" });
    await Deno.writeTextFile(keyFile, key.pem);
    const production = await ApnsService.start(key, () => clock.now());
    const sandbox = await ApnsService.start(key, () => clock.now());
    const { ca } = await testCertificates();
    const t = await startTestRelay({
      db,
      clock,
      env: {
        SEALPOST_APNS_KEY_FILE: keyFile,
        SEALPOST_APNS_KEY_ID: key.keyId,
        SEALPOST_APNS_TEAM_ID: key.teamId,
        SEALPOST_APNS_TOPIC: "com.example.chat",
        SEALPOST_PUSH_MIN_INTERVAL: "30s",
      },
      push: {
        caCerts: [ca],
        apnsProductionUrl: production.origin,
        apnsSandboxUrl: sandbox.origin,
      },
    });
    try {
      const info = await (await fetch(`${t.url}/v1/info`)).json();
      assert.equal(info.push.apns, true);

      const alice = await newDevice(t.url, "alice");
      const bob = await newDevice(t.url, "bob");
      const carol = await newDevice(t.url, "carol");
      const group = await alice.api.createGroup({ members: [bob.account, carol.account] });
      const bobToken = hexToken();
      const carolToken = hexToken();
      await bob.api.setPushTarget({ kind: "apns", token: bobToken, topic: "com.example.chat" });
      await carol.api.setPushTarget({
        kind: "apns",
        token: carolToken,
        topic: "com.example.chat",
        sandbox: true,
      });
      await assertRejects(
        carol.api.setPushTarget({ kind: "apns", token: carolToken, topic: "com.other.app" }),
        400,
        "invalid_request",
      );

      await alice.api.send(group.id, { body: cipher() });
      await waitUntil(
        "both pushes",
        () => production.deliveries.length === 1 && sandbox.deliveries.length === 1,
      );
      assert.deepEqual([production.rejected, sandbox.rejected], [[], []]);
      const [toBob] = production.deliveries;
      assert.equal(toBob.token, bobToken);
      assert.equal(sandbox.deliveries[0].token, carolToken, "sandbox tokens go to the sandbox");
      assert.equal(toBob.headers.get("apns-topic"), "com.example.chat");
      assert.ok(Number(toBob.headers.get("apns-expiration")) > clock.now() / 1000);
      assert.deepEqual(toBob.body, {
        aps: { "content-available": 1 },
        sealpost: "wake",
      }, "Apple is not told which group");
      const firstIat = toBob.jwt.iat;
      await t.relay.push.idle(); // the round is over before time moves

      // 30 minutes on, the same provider token is still used (Apple: no refresh within 20).
      clock.advance(30 * 60_000);
      await alice.api.send(group.id, { body: cipher() });
      await waitUntil("a second push", () => production.deliveries.length === 2);
      assert.equal(production.deliveries[1].jwt.iat, firstIat);
      await t.relay.push.idle();

      // Past 50 minutes a new one is signed (Apple: refresh at least every 60).
      clock.advance(25 * 60_000);
      await alice.api.send(group.id, { body: cipher() });
      await waitUntil("a third push", () => production.deliveries.length === 3);
      assert.ok(production.deliveries[2].jwt.iat > firstIat, "a fresh provider token");
      await t.relay.push.idle();

      // APNs says the token is gone: the target is removed, nothing is retried.
      clock.advance(60_000);
      production.answers.set(bobToken, [{
        status: 410,
        body: { reason: "Unregistered", timestamp: clock.now() },
      }]);
      await alice.api.send(group.id, { body: cipher() });
      await waitUntil(
        "bob's target to be removed",
        async () =>
          !(await t.database.db.selectFrom("push_targets").select("device_id")
            .where("device_id", "=", bob.device).executeTakeFirst()),
      );
      assert.equal(production.deliveries.length, 3);
      assert.equal(
        (await t.database.db.selectFrom("push_outbox").selectAll()
          .where("device_id", "=", bob.device).execute()).length,
        0,
      );
      const stats = await t.database.db.selectFrom("push_stats").selectAll()
        .where("provider", "=", "apns").executeTakeFirstOrThrow();
      assert.equal(Number(stats.gone), 1);
      assert.ok(Number(stats.sent) >= 4);
    } finally {
      await t.stop();
      await production.close();
      await sandbox.close();
      await Deno.remove(keyFile);
    }
  },
);

Deno.test("the APNs sender negotiates HTTP/2 by ALPN", async () => {
  const { ca, cert, key } = await testCertificates();
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert,
    key,
    alpnProtocols: ["h2", "http/1.1"],
  });
  const accepted = (async () => {
    const conn = await listener.accept();
    const handshake = await conn.handshake();
    conn.close();
    return handshake.alpnProtocol;
  })();
  const p8 = await apnsKey();
  const { importPKCS8 } = await import("jose");
  const sender = new ApnsSender({
    key: await importPKCS8(p8.pem, "ES256"),
    keyId: p8.keyId,
    teamId: p8.teamId,
    clock: new ManualClock(),
    productionUrl: `https://localhost:${listener.addr.port}`,
    caCerts: [ca],
  });
  try {
    const outcome = await sender.send(
      { kind: "apns", token: "ab".repeat(32), topic: "com.example.chat", sandbox: false },
      {},
    );
    assert.equal(outcome.result, "retry", "the server hung up: a network failure");
    assert.equal(await accepted, "h2");
  } finally {
    sender.close();
    listener.close();
  }
});

Deno.test("a missing or malformed APNs key stops the start with one clear line", async () => {
  const guard = new AddressGuard({ allowPrivate: false });
  const clock = new ManualClock();
  const noDb = null as unknown as Db; // never reached: credentials are checked first
  const base = { SEALPOST_APNS_KEY_ID: "ABC123DEFG", SEALPOST_APNS_TEAM_ID: "TEAM123456" };
  await assert.rejects(
    openPushSenders(
      loadConfig({ ...base, SEALPOST_APNS_KEY_FILE: "/nonexistent/AuthKey.p8" }),
      noDb,
      clock,
      guard,
    ),
    (error) =>
      error instanceof ConfigError && /^Cannot read SEALPOST_APNS_KEY_FILE: /.test(error.message),
  );
  await assert.rejects(
    openPushSenders(loadConfig({ ...base, SEALPOST_APNS_KEY: "not a key" }), noDb, clock, guard),
    (error) => error instanceof ConfigError && /expected the \.p8 file/.test(error.message),
  );
  assert.throws(
    () => loadConfig({ SEALPOST_APNS_KEY_ID: "ABC123DEFG" }),
    (error) =>
      error instanceof ConfigError &&
      error.message ===
        "Cannot use APNs push: it needs SEALPOST_APNS_KEY_FILE or SEALPOST_APNS_KEY, SEALPOST_APNS_TEAM_ID, got them unset",
  );
});

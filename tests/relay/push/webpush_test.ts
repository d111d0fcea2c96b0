/**
 * Tests of relay/push/webpush.ts, encrypt.ts and vapid.ts: the RFC 8291 encryption reproduces
 * the RFC's Appendix A vector; a message for an offline device reaches a local Web Push
 * service that verifies the VAPID token (signature with the advertised key, audience, expiry,
 * subject) and decrypts the payload with the subscription's private key; the VAPID key is made
 * on first start, kept in the database and advertised in `/v1/info`. PGlite and Postgres.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../../relay/base/clock.ts";
import { fromBase64Url, toBase64Url } from "../../../relay/base/encoding.ts";
import { encryptAes128gcm } from "../../../relay/push/encrypt.ts";
import { PADDED_PAYLOAD_BYTES } from "../../../relay/push/webpush.ts";
import { cipher, newDevice } from "../../helpers/accounts.ts";
import { decryptWebPush, testCertificates, WebPushService } from "../../helpers/push.ts";
import { startTestRelay, testBothDatabases } from "../../helpers/relay.ts";

const b64 = (text: string) => new Uint8Array(fromBase64Url(text)!);

Deno.test("encryptAes128gcm() reproduces the RFC 8291 Appendix A example", async () => {
  const asPublic = b64(
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
  );
  const jwk = {
    kty: "EC",
    crv: "P-256",
    d: "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
    x: toBase64Url(asPublic.slice(1, 33)),
    y: toBase64Url(asPublic.slice(33)),
  };
  const privateKey = await crypto.subtle.importKey(
    "jwk",
    jwk,
    { name: "ECDH", namedCurve: "P-256" },
    true,
    ["deriveBits"],
  );
  const publicKey = await crypto.subtle.importKey(
    "raw",
    asPublic,
    { name: "ECDH", namedCurve: "P-256" },
    true,
    [],
  );
  const body = await encryptAes128gcm(
    new TextEncoder().encode("When I grow up, I want to be a watermelon"),
    b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"),
    b64("BTBZMqHH6r4Tts7J_aSIgg"),
    { salt: b64("DGv6ra1nlYgDCS1FRnbzlw"), keyPair: { privateKey, publicKey } },
  );
  assert.equal(
    toBase64Url(body),
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
  );
  // And the test receiver's independent decryption reads it back with the RFC's UA key.
  const uaPublic = b64(
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
  );
  const uaPrivate = await crypto.subtle.importKey(
    "jwk",
    {
      kty: "EC",
      crv: "P-256",
      d: "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
      x: toBase64Url(uaPublic.slice(1, 33)),
      y: toBase64Url(uaPublic.slice(33)),
    },
    { name: "ECDH", namedCurve: "P-256" },
    false,
    ["deriveBits"],
  );
  const plain = await decryptWebPush(body, {
    privateKey: uaPrivate,
    publicRaw: uaPublic,
    auth: b64("BTBZMqHH6r4Tts7J_aSIgg"),
  });
  assert.equal(new TextDecoder().decode(plain), "When I grow up, I want to be a watermelon");
});

testBothDatabases(
  "a message for an offline device sends a Web Push the subscriber decrypts, with a valid VAPID token",
  async (db) => {
    const clock = new ManualClock(Date.now());
    const service = await WebPushService.start(() => clock.now());
    const { ca } = await testCertificates();
    const t = await startTestRelay({
      db,
      clock,
      env: {
        SEALPOST_UNIFIEDPUSH_ALLOW_PRIVATE: "true",
        SEALPOST_VAPID_SUBJECT: "mailto:ops@relay.example",
      },
      push: { caCerts: [ca] },
    });
    try {
      const info = await (await fetch(`${t.url}/v1/info`)).json();
      const vapidKey = info.push.webpush?.vapid_public_key;
      assert.equal(typeof vapidKey, "string", JSON.stringify(info.push));
      assert.equal(fromBase64Url(vapidKey)?.length, 65);
      assert.equal(info.push.unifiedpush, true);
      assert.equal(info.push.apns, false);
      assert.equal(info.push.fcm, false);

      const alice = await newDevice(t.url, "alice");
      const bob = await newDevice(t.url, "bob");
      const group = await alice.api.createGroup({ members: [bob.account] });
      const bobSub = await service.subscribe();
      const aliceSub = await service.subscribe();
      await bob.api.setPushTarget({ kind: "webpush", ...bobSub });
      await alice.api.setPushTarget({ kind: "webpush", ...aliceSub });

      await alice.api.send(group.id, { body: cipher() });
      await service.waitFor(1);
      const [delivery] = service.to(bobSub.endpoint);
      assert.ok(delivery, `bob was woken; rejected: ${service.rejected}`);
      assert.deepEqual(delivery.payload, { sealpost: "wake", group: group.id });
      assert.equal(delivery.vapid.key, vapidKey, "signed with the advertised VAPID key");
      assert.equal(delivery.vapid.sub, "mailto:ops@relay.example");
      assert.equal(delivery.vapid.aud, service.origin);
      assert.equal(delivery.headers.get("ttl"), "86400");
      assert.equal(delivery.headers.get("urgency"), "normal");
      assert.equal(delivery.headers.get("topic"), "sealpost-wake", "a newer wake-up replaces it");
      // salt 16 + rs 4 + idlen 1 + key 65 + padded record + tag 16: every wake-up looks alike.
      assert.equal(delivery.bytes, 86 + PADDED_PAYLOAD_BYTES + 16);
      assert.equal(service.to(aliceSub.endpoint).length, 0, "the sender is not woken");
      assert.deepEqual(service.rejected, []);
    } finally {
      await t.stop();
      await service.close();
    }
  },
);

testBothDatabases("the VAPID key is made on first start and kept across restarts", async (db) => {
  const first = await startTestRelay({ db });
  const key = (await (await fetch(`${first.url}/v1/info`)).json()).push.webpush.vapid_public_key;
  await first.stop();
  const second = await startTestRelay({
    db,
    dataDir: first.dataDir,
    databaseUrl: first.databaseUrl,
  });
  try {
    const again = (await (await fetch(`${second.url}/v1/info`)).json()).push.webpush
      .vapid_public_key;
    assert.equal(again, key);
    const rows = await second.database.db.selectFrom("push_keys").selectAll().execute();
    assert.equal(rows.length, 1);
    assert.equal(rows[0].name, "vapid");
  } finally {
    await second.stop();
  }
});

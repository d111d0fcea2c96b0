/**
 * Tests of relay/push/unifiedpush.ts and address_guard.ts: a UnifiedPush distributor gets the
 * Web Push request (encrypted with keys, the bare wake-up without — never a group id in the
 * clear); endpoints on loopback, private, link-local and other non-public addresses are refused
 * at registration and again at send time (DNS may change), for literal IPs and for names that
 * resolve to them, unless the operator allows private endpoints.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../../relay/base/clock.ts";
import { toBase64Url } from "../../../relay/base/encoding.ts";
import { AddressGuard, isPrivateAddress } from "../../../relay/push/address_guard.ts";
import { cipher, newDevice } from "../../helpers/accounts.ts";
import { assertRejects } from "../../helpers/http.ts";
import { testCertificates, waitUntil, WebPushService } from "../../helpers/push.ts";
import { startTestRelay, testBothDatabases } from "../../helpers/relay.ts";

Deno.test("isPrivateAddress() refuses every non-public address", () => {
  const refused = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.8",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.20",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:10.1.2.3",
    "64:ff9b::a00:1",
    "2002:c0a8:0101::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1%eth0",
    "ff02::1",
    "2001:db8::1",
    "::127.0.0.1", // IPv4-compatible
    "::8.8.8.8", // IPv4-compatible, deprecated even when public
    "::ffff:0:127.0.0.1", // IPv4-translated
    "::ffff:0:10.0.0.1",
    "2001::1", // Teredo
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "64:ff9b::127.0.0.1", // NAT64
    "64:ff9b:1::808:808", // local-use NAT64
    "2002:7f00:1::1", // 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1", // 6to4 of 169.254.169.254
    "3fff::1",
    "not an address",
  ];
  const allowed = [
    "93.184.216.34",
    "8.8.8.8",
    "172.32.0.1",
    "100.128.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001::200e",
    "::ffff:93.184.216.34",
    "::ffff:0:93.184.216.34",
    "64:ff9b::8.8.8.8",
    "2002:5db8:d822::1",
    "2001:4860:4860::8888",
  ];
  for (const ip of refused) assert.equal(isPrivateAddress(ip), true, ip);
  for (const ip of allowed) assert.equal(isPrivateAddress(ip), false, ip);
});

Deno.test("AddressGuard checks literal hosts and resolved names", async () => {
  const dns: Record<string, string[]> = {
    "push.example.com": ["93.184.216.34", "2606:2800:220:1::1"],
    "sneaky.example.com": ["93.184.216.34", "10.0.0.5"],
    "metadata.example.com": ["169.254.169.254"],
  };
  const guard = new AddressGuard({
    allowPrivate: false,
    resolve: (host) => Promise.resolve(dns[host] ?? []),
  });
  assert.equal(await guard.refusal("https://push.example.com/up/1"), null);
  assert.equal(await guard.refusal("https://93.184.216.34/up/1"), null);
  const sneaky = (await guard.refusal("https://sneaky.example.com/x"))!;
  assert.match(sneaky, /resolves to a private or loopback address/);
  assert.doesNotMatch(sneaky, /10\.0\.0\.5/, "the resolved private address is not disclosed");
  const metadata = (await guard.refusal("http://metadata.example.com/"))!;
  assert.match(metadata, /resolves to a private or loopback address/);
  assert.doesNotMatch(metadata, /169\.254/);
  assert.match((await guard.refusal("http://[::127.0.0.1]/"))!, /private or loopback address/);
  assert.match((await guard.refusal("http://[::ffff:0:127.0.0.1]/"))!, /private or loopback/);
  assert.match((await guard.refusal("http://[2001::7f00:1]/"))!, /private or loopback address/);
  assert.match((await guard.refusal("http://127.0.0.1:8080/"))!, /private or loopback address/);
  assert.match((await guard.refusal("http://[::1]:8080/"))!, /private or loopback address/);
  assert.match((await guard.refusal("http://localhost:8080/"))!, /loopback name/);
  assert.match((await guard.refusal("https://nowhere.example.com/"))!, /does not resolve/);
  const open = new AddressGuard({ allowPrivate: true, resolve: () => Promise.resolve([]) });
  assert.equal(await open.refusal("http://127.0.0.1:8080/"), null);
});

Deno.test("private push endpoints are refused at registration and at send time", async () => {
  const dns: Record<string, string[]> = { "ntfy.example.com": ["93.184.216.34"] };
  const t = await startTestRelay({
    push: { resolve: (host) => Promise.resolve(dns[host] ?? []) },
  });
  try {
    const alice = await newDevice(t.url, "alice");
    const bob = await newDevice(t.url, "bob");
    for (
      const endpoint of [
        "http://127.0.0.1:2586/up/abc",
        "http://[::1]/up",
        "http://10.0.0.8/up",
        "http://localhost/up",
        "http://unknown.example.com/up",
      ]
    ) {
      const error = await assertRejects(
        bob.api.setPushTarget({ kind: "unifiedpush", endpoint }),
        400,
        "invalid_request",
      );
      assert.match(error.message, /SEALPOST_UNIFIEDPUSH_ALLOW_PRIVATE=true/, endpoint);
    }
    const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
      "deriveBits",
    ]) as CryptoKeyPair;
    const p256dh = toBase64Url(
      new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)),
    );
    const webpush = await assertRejects(
      bob.api.setPushTarget({
        kind: "webpush",
        endpoint: "https://192.168.1.2/push",
        keys: { p256dh, auth: "A".repeat(22) },
      }),
      400,
      "invalid_request",
    );
    assert.match(webpush.message, /endpoint: refused because its host 192\.168\.1\.2/);
    // A public distributor is accepted…
    await bob.api.setPushTarget({ kind: "unifiedpush", endpoint: "https://ntfy.example.com/up1" });
    // …and if its name later points inward, the send is refused without a request.
    dns["ntfy.example.com"] = ["192.168.1.9"];
    const group = await alice.api.createGroup({ members: [bob.account] });
    await alice.api.send(group.id, { body: cipher() });
    await t.relay.push.idle();
    const report = await t.relay.push.dispatchOnce();
    assert.equal(report.claimed, 0, "the wake-up was already handled");
    const stats = await t.database.db.selectFrom("push_stats").selectAll()
      .where("provider", "=", "unifiedpush").executeTakeFirstOrThrow();
    assert.equal(Number(stats.failed), 1);
    assert.equal(Number(stats.sent), 0);
    assert.ok(t.logs.some((l) => /endpoint refused: its host ntfy\.example\.com resolves/.test(l)));
  } finally {
    await t.stop();
  }
});

testBothDatabases(
  "a UnifiedPush distributor gets the wake-up: encrypted with keys, bare without",
  async (db) => {
    const clock = new ManualClock(Date.now());
    const service = await WebPushService.start(() => clock.now());
    const { ca } = await testCertificates();
    const t = await startTestRelay({
      db,
      clock,
      env: { SEALPOST_UNIFIEDPUSH_ALLOW_PRIVATE: "true" },
      push: { caCerts: [ca] },
    });
    try {
      const alice = await newDevice(t.url, "alice");
      const bob = await newDevice(t.url, "bob");
      const carol = await newDevice(t.url, "carol");
      const group = await alice.api.createGroup({ members: [bob.account, carol.account] });
      const bare = service.endpoint();
      const withKeys = await service.subscribe();
      await bob.api.setPushTarget({ kind: "unifiedpush", endpoint: bare });
      await carol.api.setPushTarget({ kind: "unifiedpush", ...withKeys });
      await alice.api.send(group.id, { body: cipher() });
      await waitUntil("both distributors' deliveries", () => service.deliveries.length === 2);
      assert.deepEqual(service.rejected, []);
      const [toBob] = service.to(bare);
      assert.equal(toBob.encrypted, false);
      assert.deepEqual(toBob.payload, { sealpost: "wake" }, "no group id in the clear");
      const [toCarol] = service.to(withKeys.endpoint);
      assert.equal(toCarol.encrypted, true);
      assert.deepEqual(toCarol.payload, { sealpost: "wake", group: group.id });
    } finally {
      await t.stop();
      await service.close();
    }
  },
);

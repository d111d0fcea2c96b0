/**
 * Tests of relay/push/pinned_fetch.ts: a push request goes to the address the SSRF guard
 * checked, whatever the endpoint's name resolves to at fetch time (DNS rebinding), over https
 * (through the relay's loopback CONNECT tunnel, TLS checked for the endpoint's name) and http.
 * The receivers listen on 127.0.0.2 only, while `localhost` resolves to 127.0.0.1 / ::1: a
 * request that reaches them was pinned.
 */

import assert from "node:assert/strict";
import type { AddressGuard } from "../../../relay/push/address_guard.ts";
import { PinnedFetcher } from "../../../relay/push/pinned_fetch.ts";
import { postPushMessage } from "../../../relay/push/webpush.ts";
import { testCertificates, testVapidSigner } from "../../helpers/push.ts";

async function receivers() {
  const { ca, cert, key } = await testCertificates();
  const seen: string[] = [];
  const handler = async (request: Request) => {
    // `Host` over HTTP/1.1, `:authority` over HTTP/2: both end up in the URL.
    seen.push(`${request.method} ${new URL(request.url).host} ${await request.text()}`);
    return new Response("ok", { status: 201 });
  };
  const tls = Deno.serve({ hostname: "127.0.0.2", port: 0, cert, key, onListen() {} }, handler);
  const plain = Deno.serve({ hostname: "127.0.0.2", port: 0, onListen() {} }, handler);
  return {
    ca,
    seen,
    https: `https://localhost:${tls.addr.port}/push/1`,
    http: `http://localhost:${plain.addr.port}/push/1`,
    stop: async () => {
      await tls.shutdown();
      await plain.shutdown();
    },
  };
}

Deno.test("PinnedFetcher connects to the checked address over https and http", async () => {
  const r = await receivers();
  const pinned = new PinnedFetcher({ caCerts: [r.ca] });
  try {
    for (const url of [r.https, r.http]) {
      const status = await pinned.fetch(
        url,
        { method: "POST", body: "wake" },
        "127.0.0.2",
        (response) => response.body?.cancel().then(() => response.status),
      );
      assert.equal(status, 201, url);
      assert.equal(r.seen.pop(), `POST ${new URL(url).host} wake`, "Host names the endpoint");
      // The same URL fetched by name goes where the name resolves, and finds nothing there.
      const client = Deno.createHttpClient({ caCerts: [r.ca] });
      await assert.rejects(fetch(url, { method: "POST", body: "x", client }));
      client.close();
    }
    // The tunnel's TLS is end to end: a pin to an address serving another name's certificate
    // still fails verification for the endpoint's name.
    await assert.rejects(
      pinned.fetch(r.https.replace("localhost", "push.invalid"), {}, "127.0.0.2", () => 0),
    );
  } finally {
    pinned.close();
    await r.stop();
  }
});

Deno.test("postPushMessage() sends to the address its guard checked, not a new lookup", async () => {
  const r = await receivers();
  const pinned = new PinnedFetcher({ caCerts: [r.ca] });
  // The guard's verdict as if `localhost` had resolved to a public address that is 127.0.0.2.
  const guard = {
    check: () => Promise.resolve({ refusal: null, address: "127.0.0.2" }),
  } as unknown as AddressGuard;
  const vapid = await testVapidSigner();
  try {
    const outcome = await postPushMessage({ vapid, guard, pinned }, r.https, null, {});
    assert.equal(outcome.result, "sent");
    assert.match(r.seen.pop()!, /^POST localhost:\d+ \{/);
  } finally {
    pinned.close();
    await r.stop();
  }
});

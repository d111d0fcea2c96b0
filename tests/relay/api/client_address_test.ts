/**
 * Unit tests of relay/api/client_address.ts: which address a request comes from, with and
 * without trusted proxies, against forged and malformed forwarding headers.
 */

import assert from "node:assert/strict";
import { clientAddress } from "../../../relay/api/client_address.ts";
import { parseTrustedProxies } from "../../../relay/config/values.ts";

const proxies = parseTrustedProxies("127.0.0.1, 10.0.0.0/8, fd00::/8");
const h = (headers: Record<string, string>) => new Headers(headers);

Deno.test("clientAddress() without trusted proxies is the socket's address, headers ignored", () => {
  const forged = h({ "x-forwarded-for": "1.2.3.4", "fly-client-ip": "5.6.7.8" });
  assert.equal(clientAddress("198.51.100.1", forged, undefined), "198.51.100.1");
  assert.equal(clientAddress("::ffff:198.51.100.1", forged, undefined), "198.51.100.1");
  assert.equal(clientAddress(undefined, forged, undefined), "unknown");
});

Deno.test("clientAddress() believes X-Forwarded-For only from a trusted peer", () => {
  const headers = h({ "x-forwarded-for": "203.0.113.9" });
  assert.equal(clientAddress("127.0.0.1", headers, proxies), "203.0.113.9");
  assert.equal(clientAddress("::ffff:10.1.2.3", headers, proxies), "203.0.113.9");
  assert.equal(clientAddress("198.51.100.1", headers, proxies), "198.51.100.1");
});

Deno.test("clientAddress() takes the right-most untrusted hop; what the client wrote is not believed", () => {
  // The client forged "6.6.6.6"; the outer proxy appended the real client; an inner proxy too.
  const headers = h({ "x-forwarded-for": "6.6.6.6, 203.0.113.9, 10.0.0.5" });
  assert.equal(clientAddress("127.0.0.1", headers, proxies), "203.0.113.9");
  // Several header lines are one list.
  const lines = new Headers();
  lines.append("x-forwarded-for", "6.6.6.6");
  lines.append("x-forwarded-for", "203.0.113.10");
  assert.equal(clientAddress("127.0.0.1", lines, proxies), "203.0.113.10");
  // Every hop trusted: the left-most is the client.
  assert.equal(
    clientAddress("127.0.0.1", h({ "x-forwarded-for": "10.0.0.9, 10.0.0.5" }), proxies),
    "10.0.0.9",
  );
});

Deno.test("clientAddress() stops at garbage in the chain and answers the hop that wrote it", () => {
  const headers = h({ "x-forwarded-for": "203.0.113.9, not-an-ip, 10.0.0.5" });
  assert.equal(clientAddress("127.0.0.1", headers, proxies), "10.0.0.5");
  assert.equal(clientAddress("127.0.0.1", h({ "x-forwarded-for": "" }), proxies), "127.0.0.1");
  const long = Array.from({ length: 10_000 }, () => "10.0.0.1").join(",");
  assert.equal(clientAddress("127.0.0.1", h({ "x-forwarded-for": long }), proxies), "10.0.0.1");
});

Deno.test("clientAddress() reads RFC 7239 Forwarded when there is no X-Forwarded-For", () => {
  const headers = h({
    forwarded: 'for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.5:80',
  });
  assert.equal(clientAddress("fd00::1", headers, proxies), "2001:db8:cafe::17");
  assert.equal(clientAddress("127.0.0.1", h({ forwarded: "for=unknown" }), proxies), "127.0.0.1");
});

Deno.test("clientAddress() with fly believes Fly-Client-IP", () => {
  const fly = parseTrustedProxies("fly");
  const headers = h({ "fly-client-ip": "2a02:db8::5", "x-forwarded-for": "6.6.6.6" });
  assert.equal(clientAddress("fdaa:0:1::3", headers, fly), "2a02:db8::5");
  assert.equal(clientAddress("fdaa:0:1::3", h({ "fly-client-ip": "junk" }), fly), "fdaa:0:1::3");
});

Deno.test("parseTrustedProxies() names the bad item", () => {
  assert.throws(() => parseTrustedProxies("10.0.0.0/33"), /bad item '10.0.0.0\/33'/);
  assert.throws(() => parseTrustedProxies("nginx"), /bad item 'nginx'/);
  assert.throws(() => parseTrustedProxies(" , "), /at least one/);
});

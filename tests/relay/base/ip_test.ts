/**
 * Unit tests of relay/base/ip.ts: address and CIDR parsing and matching.
 */

import assert from "node:assert/strict";
import { cidrContains, normalizeIp, parseCidr, parseIp } from "../../../relay/base/ip.ts";

Deno.test("parseIp() reads IPv4, IPv6 forms and IPv4-mapped IPv6 as IPv4", () => {
  assert.deepEqual([...parseIp("10.1.2.3")!], [10, 1, 2, 3]);
  assert.deepEqual([...parseIp("::ffff:10.1.2.3")!], [10, 1, 2, 3]);
  assert.equal(parseIp("[2001:db8::1]")!.length, 16);
  assert.equal(parseIp("fe80::1%eth0")!.length, 16);
  for (const bad of ["", "1.2.3", "256.1.1.1", "1::2::3", "x", "1.2.3.4.5", "::g"]) {
    assert.equal(parseIp(bad), null, bad);
  }
});

Deno.test("normalizeIp() gives canonical text", () => {
  assert.equal(normalizeIp("2001:0db8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
  assert.equal(normalizeIp("::ffff:127.0.0.1"), "127.0.0.1");
  assert.equal(normalizeIp("::"), "::");
  assert.equal(normalizeIp("1:0:0:2:0:0:0:3"), "1:0:0:2::3");
});

Deno.test("parseCidr() and cidrContains() match ranges of either family", () => {
  const ten = parseCidr("10.0.0.0/8");
  assert.ok(cidrContains(ten, parseIp("10.255.0.1")!));
  assert.ok(!cidrContains(ten, parseIp("11.0.0.1")!));
  assert.ok(cidrContains(ten, parseIp("::ffff:10.0.0.1")!));
  const odd = parseCidr("192.168.0.0/23");
  assert.ok(cidrContains(odd, parseIp("192.168.1.200")!));
  assert.ok(!cidrContains(odd, parseIp("192.168.2.1")!));
  const v6 = parseCidr("fd00::/8");
  assert.ok(cidrContains(v6, parseIp("fd12::1")!));
  assert.ok(!cidrContains(v6, parseIp("10.0.0.1")!));
  assert.ok(cidrContains(parseCidr("127.0.0.1"), parseIp("127.0.0.1")!));
  assert.ok(cidrContains(parseCidr("0.0.0.0/0"), parseIp("8.8.8.8")!));
  assert.ok(cidrContains(parseCidr("::ffff:10.0.0.0/104"), parseIp("10.9.9.9")!));
  for (const bad of ["10.0.0.0/33", "10.0.0.0/8/1", "x/8", "::/129", "10.0.0.0/-1"]) {
    assert.throws(() => parseCidr(bad), /CIDR/, bad);
  }
});

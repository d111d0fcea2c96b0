/**
 * Tests of relay/base/log.ts: identity fields are dropped from every line unless the operator
 * opts in (issue 16), and request paths lose their ids.
 */

import assert from "node:assert/strict";
import { createLogger, IDENTITY_FIELDS, redactPath } from "../../../relay/base/log.ts";

Deno.test("createLogger() with redact drops device, account and address fields", () => {
  const lines: string[] = [];
  const log = createLogger({
    level: "info",
    format: "json",
    sink: (line) => lines.push(line),
    redact: IDENTITY_FIELDS,
  });
  log.info("device revoked", { device: "D".repeat(43), by: "E".repeat(43), code: "x" });
  log.child({ ip: "203.0.113.7" }).warn("admin login failed", { account: "A".repeat(43) });
  const [first, second] = lines.map((l) => JSON.parse(l));
  assert.equal(first.code, "x");
  for (const line of [first, second]) {
    for (const key of ["device", "by", "ip", "account"]) assert.equal(key in line, false, key);
  }
  assert.ok(!lines.join("\n").includes("203.0.113.7"));
});

Deno.test("redactPath() replaces id segments with :id and keeps the route", () => {
  const key = "A".repeat(43);
  assert.equal(redactPath(`/v1/accounts/${key}/devices`), "/v1/accounts/:id/devices");
  assert.equal(redactPath(`/v1/groups/${"g".repeat(22)}/messages`), "/v1/groups/:id/messages");
  assert.equal(redactPath("/v1/devices/me/keys"), "/v1/devices/me/keys");
});

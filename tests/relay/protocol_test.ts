/**
 * Unit tests of relay/protocol.ts's error wording: zod 4 type errors name the field and the
 * types, and only a field that is really absent reads "missing required field".
 */

import assert from "node:assert/strict";
import { ClientFrame, describeIssue, LoginBody, parse } from "../../relay/protocol.ts";
import { RelayError } from "../../relay/errors.ts";

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof RelayError);
    assert.equal(error.code, "invalid_request");
    return error.message;
  }
  throw new Error("expected a RelayError");
}

Deno.test("parse() tells a field of the wrong type from a missing one", () => {
  assert.equal(messageOf(() => parse(LoginBody, {})), "missing required field device");
  assert.equal(
    messageOf(() => parse(LoginBody, { device: 42 })),
    "device: expected string, got number",
  );
  assert.equal(
    messageOf(() => parse(LoginBody, { device: null })),
    "device: expected string, got null",
  );
  assert.equal(
    messageOf(() => parse(LoginBody, { device: ["x"] })),
    "device: expected string, got array",
  );
});

Deno.test("describeIssue() with the frame names nested fields of the wrong type", () => {
  const frame = { t: "send", group: "A".repeat(22), body: 5 };
  const result = ClientFrame.safeParse(frame);
  assert.equal(result.success, false);
  assert.equal(describeIssue(result.error!, frame), "body: expected string, got number");
  const missing = { t: "ack", group: "A".repeat(22) };
  const second = ClientFrame.safeParse(missing);
  assert.equal(describeIssue(second.error!, missing), "missing required field seq");
});

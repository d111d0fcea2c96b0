/**
 * Unit tests of relay/api/ws.ts's PendingSockets: the caps on unauthenticated WebSockets.
 */

import assert from "node:assert/strict";
import { PendingSockets } from "../../../relay/api/ws.ts";
import { RelayError } from "../../../relay/errors.ts";

const refusedWith = (code: string) => (error: unknown) =>
  error instanceof RelayError && error.code === code && error.retryAfterMs !== undefined;

Deno.test("PendingSockets caps each address and the total, and releases once", () => {
  const pending = new PendingSockets(3, 2);
  const a1 = pending.admit("10.0.0.1");
  pending.admit("10.0.0.1");
  assert.throws(() => pending.admit("10.0.0.1"), refusedWith("rate_limited"));
  const b1 = pending.admit("10.0.0.2");
  assert.throws(() => pending.admit("10.0.0.3"), refusedWith("unavailable"));
  assert.equal(pending.total, 3);
  a1();
  a1(); // a second release changes nothing
  assert.equal(pending.total, 2);
  pending.admit("10.0.0.3");
  assert.throws(() => pending.admit("10.0.0.1"), refusedWith("unavailable"));
  b1();
  pending.admit("10.0.0.1");
  assert.throws(() => pending.admit("10.0.0.1"), refusedWith("rate_limited"));
});

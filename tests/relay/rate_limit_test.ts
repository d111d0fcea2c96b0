/**
 * Unit tests of relay/rate_limit.ts: a keyed token bucket on the injectable clock.
 */

import assert from "node:assert/strict";
import { ManualClock } from "../../relay/base/clock.ts";
import { RelayError } from "../../relay/errors.ts";
import { RateLimiter } from "../../relay/rate_limit.ts";

Deno.test("RateLimiter allows a burst of the rate's count, then reports the wait", () => {
  const clock = new ManualClock(1_000_000);
  const limiter = new RateLimiter({ count: 3, perMs: 60_000 }, undefined, clock);
  assert.deepEqual([limiter.take("a"), limiter.take("a"), limiter.take("a")], [0, 0, 0]);
  assert.equal(limiter.take("a"), 20_000);
  clock.advance(19_999);
  assert.equal(limiter.take("a"), 1);
  clock.advance(1);
  assert.equal(limiter.take("a"), 0);
  assert.equal(limiter.take("a"), 20_000);
});

Deno.test("RateLimiter keeps a separate bucket per key", () => {
  const limiter = new RateLimiter({ count: 1, perMs: 1000 }, undefined, new ManualClock(0));
  assert.equal(limiter.take("10.0.0.1"), 0);
  assert.equal(limiter.take("10.0.0.2"), 0);
  assert.ok(limiter.take("10.0.0.1") > 0);
});

Deno.test("RateLimiter with an explicit burst refills at the rate but holds at most the burst", () => {
  const clock = new ManualClock(0);
  const limiter = new RateLimiter({ count: 100, perMs: 60_000 }, 20, clock);
  for (let i = 0; i < 20; i++) assert.equal(limiter.take("d"), 0);
  assert.equal(limiter.take("d"), 600);
  clock.advance(3_600_000); // an hour idle still gives only the burst
  for (let i = 0; i < 20; i++) assert.equal(limiter.take("d"), 0);
  assert.ok(limiter.take("d") > 0);
});

Deno.test("RateLimiter with a null rate (off) never limits", () => {
  const limiter = new RateLimiter(null, undefined, new ManualClock(0));
  for (let i = 0; i < 10_000; i++) assert.equal(limiter.take("k"), 0);
});

Deno.test("RateLimiter.check() throws 429 rate_limited with retry_after_ms", () => {
  const limiter = new RateLimiter({ count: 1, perMs: 2_000 }, undefined, new ManualClock(0));
  limiter.check("k");
  assert.throws(() => limiter.check("k", "logins"), (error: unknown) => {
    assert.ok(error instanceof RelayError);
    assert.equal(error.status, 429);
    assert.equal(error.code, "rate_limited");
    assert.equal(error.retryAfterMs, 2_000);
    assert.match(error.message, /logins/);
    assert.deepEqual(error.toBody().error.retry_after_ms, 2_000);
    return true;
  });
});

Deno.test("RateLimiter forgets refilled keys a few per call and never holds more than its cap", () => {
  const clock = new ManualClock(0);
  const limiter = new RateLimiter({ count: 1, perMs: 1_000 }, undefined, clock, undefined, 500);
  for (let i = 0; i < 2_000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`);
  assert.equal(limiter.size, 500, "the cap evicts the least recently used keys");
  // The most recent key is still limited: eviction took the oldest ones.
  assert.ok(limiter.take("10.0.7.207") > 0);
  clock.advance(1_000); // every bucket is full again
  for (let i = 0; i < 200; i++) limiter.take("busy");
  assert.ok(limiter.size <= 1, `idle keys are forgotten in amortised steps (${limiter.size} left)`);
  assert.ok(limiter.take("busy") > 0, "a key that is still limited is kept");
});

Deno.test("RateLimiter.peek() reports the wait without taking; refund() gives a token back", () => {
  const limiter = new RateLimiter({ count: 2, perMs: 1_000 }, undefined, new ManualClock(0));
  assert.equal(limiter.peek("k"), 0);
  assert.equal(limiter.take("k"), 0);
  assert.equal(limiter.take("k"), 0);
  assert.equal(limiter.peek("k"), 500);
  assert.equal(limiter.peek("k"), 500, "peeking takes nothing");
  limiter.refund("k");
  assert.equal(limiter.peek("k"), 0);
  assert.equal(limiter.take("k"), 0);
  assert.ok(limiter.take("k") > 0);
});

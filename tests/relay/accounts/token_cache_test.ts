/**
 * Tests of relay/accounts/token_cache.ts: expiry exact, the entry's own lifetime, the bound on
 * entries, a `revoked` bus event dropping a device's tokens, and a lookup that began before a
 * drop not filling the cache. Over the real in-process bus and a manual clock.
 */

import assert from "node:assert/strict";
import { TokenCache } from "../../../relay/accounts/token_cache.ts";
import { LocalBus } from "../../../relay/bus/bus_local.ts";
import { ManualClock } from "../../../relay/base/clock.ts";

function setup(ttl = 10_000, max?: number) {
  const bus = new LocalBus();
  const clock = new ManualClock(1_000_000);
  return { bus, clock, cache: new TokenCache({ bus, clock, ttl, max }) };
}

const alice = (expiresAt: number) => ({ account: "acc-a", device: "dev-a", expiresAt });

Deno.test("TokenCache answers until the token's expiry, exactly", () => {
  const { clock, cache } = setup(60_000);
  cache.set("h1", alice(clock.now() + 5_000), cache.begin());
  assert.deepEqual(cache.get("h1"), alice(clock.now() + 5_000));
  clock.advance(4_999);
  assert.ok(cache.get("h1"));
  clock.advance(1);
  assert.equal(cache.get("h1"), undefined);
  assert.equal(cache.size, 0);
});

Deno.test("TokenCache forgets an entry after its own lifetime, and holds none with ttl 0", () => {
  const { clock, cache } = setup(10_000);
  cache.set("h1", alice(clock.now() + 3_600_000), cache.begin());
  clock.advance(9_999);
  assert.ok(cache.get("h1"));
  clock.advance(1);
  assert.equal(cache.get("h1"), undefined);

  const off = setup(0);
  off.cache.set("h1", alice(off.clock.now() + 3_600_000), off.cache.begin());
  assert.equal(off.cache.get("h1"), undefined);
  assert.equal(off.cache.size, 0);
});

Deno.test("TokenCache keeps at most max entries, dropping the oldest", () => {
  const { clock, cache } = setup(10_000, 3);
  for (let i = 0; i < 5; i++) {
    cache.set(`h${i}`, { account: "a", device: `d${i}`, expiresAt: clock.now() + 1e6 }, 0);
  }
  assert.equal(cache.size, 3);
  assert.equal(cache.get("h0"), undefined);
  assert.equal(cache.get("h1"), undefined);
  assert.ok(cache.get("h4"));
});

Deno.test("TokenCache drops a device's tokens on a revoked bus event, and only them", () => {
  const { bus, clock, cache } = setup();
  const later = clock.now() + 1e6;
  cache.set("a1", alice(later), cache.begin());
  cache.set("a2", alice(later), cache.begin());
  cache.set("b1", { account: "acc-b", device: "dev-b", expiresAt: later }, cache.begin());
  bus.publish({ kind: "revoked", device: "dev-a" });
  assert.equal(cache.get("a1"), undefined);
  assert.equal(cache.get("a2"), undefined);
  assert.ok(cache.get("b1"));
});

Deno.test("TokenCache: a lookup that began before a revocation does not fill the cache", () => {
  const { bus, clock, cache } = setup();
  const since = cache.begin(); // the row is read here, before the revocation commits
  bus.publish({ kind: "revoked", device: "dev-a" });
  cache.set("a1", alice(clock.now() + 1e6), since);
  assert.equal(cache.get("a1"), undefined);
  // A lookup that begins afterwards does.
  cache.set("a1", alice(clock.now() + 1e6), cache.begin());
  assert.ok(cache.get("a1"));
  cache.clear();
  assert.equal(cache.size, 0);
});

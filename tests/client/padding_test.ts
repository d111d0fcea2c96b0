/**
 * Tests of client/padding.ts: Padmé buckets (known values, the 12 % bound, few distinct sizes)
 * and a pad/unpad round trip for every length up to 5,000 bytes and some large ones.
 */

import assert from "node:assert/strict";
import { maxUnpaddedLength, pad, paddedLength, padmeLength, unpad } from "../../client/mod.ts";

Deno.test("padmeLength() rounds up to Padmé buckets", () => {
  assert.equal(padmeLength(0), 32);
  assert.equal(padmeLength(32), 32);
  assert.equal(padmeLength(33), 36);
  assert.equal(padmeLength(1000), 1024);
  assert.equal(padmeLength(9000), 9216);
  assert.equal(padmeLength(65_536), 65_536);
  assert.equal(
    padmeLength(3_000_000_000),
    3_019_898_880,
    "past 2^31 without overflow",
  );
  assert.throws(() => padmeLength(-1), RangeError);
});

Deno.test("padmeLength() adds at most 12 % and leaves few distinct sizes", () => {
  const sizes = new Set<number>();
  for (let n = 33; n <= 100_000; n++) {
    const p = padmeLength(n);
    assert.ok(p >= n && p <= n * 1.12, `${n} → ${p}`);
    sizes.add(p);
  }
  assert.ok(sizes.size < 1_000, `${sizes.size} buckets for 100,000 lengths`);
});

Deno.test("pad() and unpad() round-trip every length, hiding it within its bucket", () => {
  for (let n = 0; n <= 5_000; n++) {
    const data = crypto.getRandomValues(new Uint8Array(n));
    if (n > 0) data[n - 1] = n % 2 === 0 ? 0 : 0x80; // trailing bytes that look like padding
    const padded = pad(data);
    assert.equal(padded.length, paddedLength(n));
    assert.deepEqual(unpad(padded), data);
  }
  for (const n of [65_535, 1_000_000]) {
    const data = new Uint8Array(n).fill(7);
    assert.deepEqual(unpad(pad(data)), data);
  }
  assert.equal(
    pad(new TextEncoder().encode("ok")).length,
    pad(new Uint8Array(30)).length,
  );
});

Deno.test("unpad() refuses data that was not padded", () => {
  assert.throws(() => unpad(new Uint8Array([1, 2, 3])), /Cannot unpad/);
  assert.throws(() => unpad(new Uint8Array(8)), /Cannot unpad/);
  assert.throws(() => unpad(new Uint8Array(0)), /Cannot unpad/);
});

Deno.test("maxUnpaddedLength() is the largest body whose padded form fits a limit", () => {
  for (const limit of [64 * 1024, 1000, 100 * 1024 * 1024]) {
    const n = maxUnpaddedLength(limit, 16);
    assert.ok(paddedLength(n) + 16 <= limit);
    assert.ok(paddedLength(n + 1) + 16 > limit);
  }
  assert.equal(
    maxUnpaddedLength(10),
    -1,
    "nothing fits under the smallest bucket",
  );
});

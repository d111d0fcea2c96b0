/**
 * Unit tests of relay/base/encoding.ts helpers used at trust boundaries.
 */

import assert from "node:assert/strict";
import { concatBytes, sameSecret, toHex } from "../../../relay/base/encoding.ts";

Deno.test("sameSecret() is true only for equal strings, whatever their lengths", async () => {
  assert.equal(await sameSecret("Bearer s3cr3t", "Bearer s3cr3t"), true);
  assert.equal(await sameSecret("Bearer s3cr3t", "Bearer s3cr3u"), false);
  assert.equal(await sameSecret("", "Bearer s3cr3t"), false);
  assert.equal(await sameSecret("Bearer s3cr3t-and-more", "Bearer s3cr3t"), false);
  assert.equal(await sameSecret("", ""), true);
});

Deno.test("toHex() writes two lowercase digits a byte, leading zeros kept", () => {
  assert.equal(toHex(new Uint8Array([0, 1, 0x0f, 0xab, 0xff])), "00010fabff");
  assert.equal(toHex(new Uint8Array()), "");
});

Deno.test("concatBytes() joins arrays in order, empty ones included", () => {
  const joined = concatBytes(new Uint8Array([1, 2]), new Uint8Array(), new Uint8Array([3]));
  assert.deepEqual([...joined], [1, 2, 3]);
  assert.equal(concatBytes().length, 0);
});

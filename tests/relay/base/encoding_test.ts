/**
 * Unit tests of relay/base/encoding.ts helpers used at trust boundaries.
 */

import assert from "node:assert/strict";
import { sameSecret } from "../../../relay/base/encoding.ts";

Deno.test("sameSecret() is true only for equal strings, whatever their lengths", async () => {
  assert.equal(await sameSecret("Bearer s3cr3t", "Bearer s3cr3t"), true);
  assert.equal(await sameSecret("Bearer s3cr3t", "Bearer s3cr3u"), false);
  assert.equal(await sameSecret("", "Bearer s3cr3t"), false);
  assert.equal(await sameSecret("Bearer s3cr3t-and-more", "Bearer s3cr3t"), false);
  assert.equal(await sameSecret("", ""), true);
});

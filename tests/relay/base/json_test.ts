/**
 * Unit tests of relay/base/json.ts: depth, width and NUL bounds checked without recursion.
 */

import assert from "node:assert/strict";
import { jsonProblem } from "../../../relay/base/json.ts";

Deno.test("jsonProblem() walks 200,000 levels without overflowing the stack", () => {
  const depth = 200_000;
  const deep = JSON.parse("[".repeat(depth) + "]".repeat(depth));
  assert.equal(jsonProblem(deep), "nested deeper than 32 levels");
  assert.equal(jsonProblem(JSON.parse("[".repeat(32) + "]".repeat(32))), null);
  assert.equal(
    jsonProblem(JSON.parse("[".repeat(33) + "]".repeat(33))),
    "nested deeper than 32 levels",
  );
});

Deno.test("jsonProblem() bounds width and refuses NUL in strings and keys", () => {
  assert.equal(jsonProblem({ a: new Array(10_000).fill(1) }), null);
  assert.match(jsonProblem({ a: new Array(10_001).fill(1) })!, /array holds more than 10000/);
  const wide = Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, i]));
  assert.match(jsonProblem(wide)!, /object holds more than 10000/);
  assert.match(jsonProblem({ a: ["x\u0000y"] })!, /NUL/);
  assert.match(jsonProblem({ "k\u0000": 1 })!, /NUL/);
  assert.equal(jsonProblem({ a: 1, b: "ok", c: [null, true, { d: 2 }] }), null);
});

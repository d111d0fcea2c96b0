import assert from "node:assert/strict";
import { Deadlines } from "../../../relay/base/deadlines.ts";

Deno.test("Deadlines.due() returns items once, never before their time, in order of their second", () => {
  const d = new Deadlines<string>();
  d.add("late", 5_200);
  d.add("early", 1_000);
  d.add("mid", 3_001);
  d.add("gone", 2_000);
  d.delete("gone");
  assert.equal(d.size, 3);
  assert.deepEqual(d.due(999), []);
  assert.deepEqual(d.due(1_000), ["early"]);
  assert.deepEqual(d.due(3_500), [], "3001 is due from 4000 (its second's end), never early");
  assert.deepEqual(d.due(4_000), ["mid"]);
  d.add("late", 4_500); // moved earlier
  assert.deepEqual(d.due(5_000), ["late"]);
  assert.deepEqual(d.due(10_000), []);
  assert.equal(d.size, 0);
});

Deno.test("Deadlines.due() looks only at due buckets: 10,000 waiting items, one due", () => {
  const d = new Deadlines<number>();
  for (let i = 0; i < 10_000; i++) d.add(i, 1_000_000 + i * 10);
  d.add(-1, 500);
  assert.deepEqual(d.due(600), [], "500 is due from the end of its second");
  assert.deepEqual(d.due(1_000), [-1]);
  assert.equal(d.size, 10_000);
  let total = 0;
  for (let now = 1_000_000; now <= 1_100_000; now += 1_000) total += d.due(now).length;
  assert.equal(total, 10_000);
});

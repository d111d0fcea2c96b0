/**
 * Tests of commands/migrate.ts as a user runs it: `sealpost migrate --to N` reverts to migration
 * N with each later migration's `down()`, `migrate` brings it back, `serve` refuses nothing it
 * knows, and a bad target is one line naming the choices. On embedded PGlite (the migrations
 * themselves are tested on both databases in tests/relay/store/migrate_test.ts).
 */

import assert from "node:assert/strict";
import { MIGRATIONS } from "../../migrations/mod.ts";
import { runCli } from "../helpers/cli.ts";

const ALL = Object.keys(MIGRATIONS);

Deno.test("sealpost migrate --to N reverts later migrations, and migrate re-applies them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sealpost-migrate-" });
  try {
    const env = { SEALPOST_DATA_DIR: `${dir}/data` };
    const up = await runCli(["migrate"], env);
    assert.equal(up.code, 0, up.stderr);
    const previous = ALL.at(-2)!;
    const n = String(Number(previous.split("_")[0]));
    const down = await runCli(["migrate", "--to", n], env);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(down.stdout.trim(), `Reverted ${ALL.at(-1)}; the schema is at ${previous}`);
    const doctor = await runCli(["doctor"], env);
    assert.match(doctor.stdout, /1 pending \(run sealpost migrate or serve\)/);
    const again = await runCli(["migrate"], env);
    assert.equal(again.stdout.trim(), `Applied ${ALL.at(-1)}; the schema is at ${ALL.at(-1)}`);
    const same = await runCli(["migrate", "--to", ALL.at(-1)!], env);
    assert.equal(same.stdout.trim(), `Nothing to apply; the schema is at ${ALL.at(-1)}`);

    const bad = await runCli(["migrate", "--to", "99"], env);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /^sealpost: Cannot migrate to '99': expected 0 or one of 1 \(0001_initial\)/,
    );
    const misplaced = await runCli(["doctor", "--to", "3"], env);
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /--to belongs to 'migrate'/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

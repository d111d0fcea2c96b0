/**
 * Tests of the command line in main.ts, run as a user runs it (`deno run -A main.ts …`): usage
 * errors and bad settings exit 2 with one clear line, `serve --help` lists every setting, and
 * `migrate` and `doctor` work on a fresh data directory and refuse a database that is too new.
 */

import assert from "node:assert/strict";
import { sql } from "kysely";
import { SETTINGS } from "../../relay/config/config.ts";
import { openPglite } from "../../relay/store/database.ts";
import { VERSION } from "../../relay/base/version.ts";
import { runCli } from "../helpers/cli.ts";

/** Asserts a failed run: exit `code` and exactly one line on stderr matching `pattern`. */
function assertOneLineFailure(
  result: { code: number; stdout: string; stderr: string },
  code: number,
  pattern: RegExp,
): void {
  assert.equal(result.code, code, `exit code; stderr: ${result.stderr}`);
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line, got:\n${result.stderr}`);
  assert.match(lines[0], pattern);
  assert.ok(!/\bat \S+:\d+/.test(result.stderr), "no stack trace");
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "sealpost-cli-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("sealpost with an unknown command exits 2 with one line naming it", async () => {
  const result = await runCli(["serv"]);
  assertOneLineFailure(result, 2, /^sealpost: Unknown command 'serv'; expected one of serve, /);
  assert.match(result.stderr, /sealpost help/);
});

Deno.test("sealpost serve with an unknown flag exits 2 with one line naming it", async () => {
  assertOneLineFailure(await runCli(["serve", "--prot", "80"]), 2, /Unknown flag '--prot'/);
  assertOneLineFailure(await runCli(["--verbose"]), 2, /Unknown flag '--verbose'/);
  assertOneLineFailure(await runCli(["migrate", "extra"]), 2, /Unexpected argument 'extra'/);
});

Deno.test("sealpost with a bad setting exits 2 with one line naming variable, value and accepted values", async () => {
  assertOneLineFailure(
    await runCli(["serve"], { PORT: "eighty" }),
    2,
    /^sealpost: Cannot parse PORT: expected a port number from 0 to 65535, got 'eighty'$/,
  );
  assertOneLineFailure(
    await runCli(["migrate"], { SEALPOST_RETENTION: "soon" }),
    2,
    /^sealpost: Cannot parse SEALPOST_RETENTION: expected a duration like .*, got 'soon'$/,
  );
  assertOneLineFailure(
    await runCli(["doctor", "--registration", "maybe"]),
    2,
    /^sealpost: Cannot parse --registration: expected one of open, invite, closed, got 'maybe'$/,
  );
});

Deno.test("sealpost serve --help lists every setting with its flag", async () => {
  const result = await runCli(["serve", "--help"]);
  assert.equal(result.code, 0, result.stderr);
  for (const setting of Object.values(SETTINGS)) {
    assert.match(result.stdout, new RegExp(`--${setting.flag}\\s+${setting.env}\\s`));
  }
});

Deno.test("sealpost help and version print usage and the version", async () => {
  const help = await runCli(["help"]);
  assert.equal(help.code, 0);
  for (const command of ["serve", "migrate", "doctor"]) {
    assert.match(help.stdout, new RegExp(command));
  }
  assert.equal((await runCli(["--help"])).stdout, help.stdout);
  const version = await runCli(["version"]);
  assert.equal(version.stdout.trim(), VERSION);
});

Deno.test("sealpost migrate creates and migrates a fresh data dir, then has nothing to apply, and doctor checks it", async () => {
  await withTempDir(async (dir) => {
    const env = { SEALPOST_DATA_DIR: `${dir}/data` };
    const first = await runCli(["migrate"], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^Applied 0001_initial.*; the schema is at \d{4}_\w+$/m);
    const second = await runCli(["migrate"], env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^Nothing to apply; the schema is at \d{4}_\w+$/m);

    const doctor = await runCli(["doctor"], env);
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    const lines = doctor.stdout.trim().split("\n");
    assert.deepEqual(lines.map((l) => l.split(/\s+/)[0]), ["ok", "ok", "ok"]);
    assert.match(
      doctor.stdout,
      /database\s+pglite at .*\/data\/pg; \d+ migrations applied, up to date/,
    );
    assert.match(doctor.stdout, /blob store\s+filesystem at .*\/data\/blobs, writable/);

    // A database migrated by a newer Sealpost: migrate and serve refuse it, doctor reports it.
    const db = await openPglite(`${dir}/data/pg`);
    await sql`insert into sealpost_migrations (name, timestamp)
      values ('9999_from_the_future', now()::text)`.execute(db.db);
    await db.close();
    assertOneLineFailure(
      await runCli(["migrate"], env),
      2,
      /^sealpost: Cannot use this database: it was migrated by a newer Sealpost \(unknown migration 9999_from_the_future\)/,
    );
    assertOneLineFailure(
      await runCli(["serve"], { ...env, PORT: "0", SEALPOST_HOST: "127.0.0.1" }),
      2,
      /newer Sealpost/,
    );
    const sick = await runCli(["doctor"], env);
    assert.equal(sick.code, 1);
    assert.match(sick.stdout, /^FAIL database\s+Cannot use this database/m);
  });
});

Deno.test("sealpost doctor reports an unreachable Postgres and an unusable blob dir, and exits 1", async () => {
  await withTempDir(async (dir) => {
    // A data dir below a regular file cannot be created, not even by root.
    await Deno.writeTextFile(`${dir}/file`, "");
    const result = await runCli(["doctor"], {
      DATABASE_URL: "postgres://nobody@127.0.0.1:1/nothing",
      SEALPOST_DATA_DIR: `${dir}/file/data`,
    });
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /^ok {3}config\s+listen 0.0.0.0:8080/m);
    assert.match(result.stdout, /^FAIL database\s+\S/m);
    assert.match(result.stdout, /^FAIL blob store\s+filesystem at .*\/file\/data\/blobs/m);
  });
});

Deno.test("sealpost migrate against an unreachable Postgres fails with one line, no password shown", async () => {
  const result = await runCli(["migrate"], {
    DATABASE_URL: "postgres://sealpost:hunter2@127.0.0.1:1/nothing",
  });
  assert.notEqual(result.code, 0);
  assert.ok(!result.stderr.includes("hunter2"), "the password stays out of the output");
  assert.equal(result.stderr.trimEnd().split("\n").length, 1, result.stderr);
});

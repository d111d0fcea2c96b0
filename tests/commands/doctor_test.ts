/**
 * Tests of commands/doctor.ts as a user runs it (`sealpost doctor` in a child process): the
 * LISTEN/NOTIFY round trip against a real Postgres and its failure through a real PgBouncer in
 * transaction mode, push credentials loaded as `serve` loads them (a missing APNs key file, a
 * broken FCM JSON), and the warning for an embedded database on a Fly machine.
 */

import assert from "node:assert/strict";
import { runCli } from "../helpers/cli.ts";
import { postgresUnavailable, sharedPostgres } from "../helpers/postgres.ts";
import { pgbouncerUnavailable, startPgbouncer } from "../helpers/pgbouncer.ts";

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "sealpost-doctor-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const noPostgres = postgresUnavailable();
if (noPostgres && Deno.env.get("CI") === "true") {
  throw new Error(`CI=true but Postgres tests cannot run: ${noPostgres}`);
}

Deno.test({
  name: "doctor makes a LISTEN/NOTIFY round trip on a server Postgres",
  ignore: noPostgres !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withTempDir(async (dir) => {
      const url = await (await sharedPostgres()).createDatabase();
      const env = { DATABASE_URL: url, SEALPOST_DATA_DIR: `${dir}/data` };
      assert.equal((await runCli(["migrate"], env)).code, 0);
      const result = await runCli(["doctor"], env);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /^ok {3}notify\s+LISTEN\/NOTIFY round trip in \d+ ms$/m);
    });
  },
});

Deno.test("doctor fails on a missing APNs key file and on a broken FCM service account", async () => {
  await withTempDir(async (dir) => {
    const base = { SEALPOST_DATA_DIR: `${dir}/data` };
    const apns = await runCli(["doctor"], {
      ...base,
      SEALPOST_APNS_KEY_FILE: `${dir}/AuthKey_ABC123DEFG.p8`,
      SEALPOST_APNS_KEY_ID: "ABC123DEFG",
      SEALPOST_APNS_TEAM_ID: "TEAM123456",
    });
    assert.equal(apns.code, 1, apns.stdout + apns.stderr);
    assert.match(
      apns.stdout,
      /^FAIL push\s+Cannot read SEALPOST_APNS_KEY_FILE: .*AuthKey_ABC123DEFG\.p8/m,
    );

    await Deno.writeTextFile(`${dir}/firebase.json`, '{"type":"service_account",');
    const fcm = await runCli(["doctor"], {
      ...base,
      SEALPOST_FCM_SERVICE_ACCOUNT_FILE: `${dir}/firebase.json`,
    });
    assert.equal(fcm.code, 1, fcm.stdout + fcm.stderr);
    assert.match(fcm.stdout, /^FAIL push\s+Cannot use the FCM service account/m);
  });
});

Deno.test("doctor warns about an embedded database on a Fly machine", async () => {
  await withTempDir(async (dir) => {
    const result = await runCli(["doctor"], {
      SEALPOST_DATA_DIR: `${dir}/data`,
      FLY_MACHINE_ID: "148e21ea7e5d89",
    });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^warn database\s+embedded PGlite on a Fly machine/m);
  });
});

const noBouncer = noPostgres ?? pgbouncerUnavailable();

Deno.test({
  name:
    "doctor names a transaction-mode PgBouncer URL: refused startup, or a NOTIFY that never comes",
  ignore: noBouncer !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withTempDir(async (dir) => {
      const url = await (await sharedPostgres()).createDatabase();
      const database = new URL(url).pathname.slice(1);
      assert.equal((await runCli(["migrate"], { DATABASE_URL: url })).code, 0);
      const base = { SEALPOST_DATA_DIR: `${dir}/data` };

      // As PgBouncer comes: it refuses the relay's startup parameters.
      const strict = await startPgbouncer(url);
      try {
        const result = await runCli(["doctor"], { ...base, DATABASE_URL: strict.url(database) });
        assert.equal(result.code, 1, result.stdout);
        assert.match(
          result.stdout,
          /^FAIL database\s+unsupported startup parameter: plan_cache_mode; this looks like a connection pooler/m,
        );
      } finally {
        await strict.stop();
      }

      // Told to ignore them: it connects, but LISTEN in transaction mode hears nothing.
      const lenient = await startPgbouncer(url, ["plan_cache_mode"]);
      try {
        const result = await runCli(["doctor"], { ...base, DATABASE_URL: lenient.url(database) });
        assert.equal(result.code, 1, result.stdout);
        assert.match(result.stdout, /^ok {3}database\s+postgres at /m);
        assert.match(
          result.stdout,
          /^FAIL notify\s+no NOTIFY came back within 3 s: .*transaction-mode pooler.*use the direct URL$/m,
        );
      } finally {
        await lenient.stop();
      }
    });
  },
});

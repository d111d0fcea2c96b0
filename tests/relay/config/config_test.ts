/**
 * Unit tests of relay/config/mod.ts: parsing of durations, sizes and rates, defaults, flags over
 * environment, and one-line errors naming the variable, the value and what is accepted. Also
 * checks that `docs/configuration.md` documents every setting with its default.
 */

import assert from "node:assert/strict";
import {
  ConfigError,
  describeSettings,
  loadConfig,
  parseDuration,
  parseRate,
  parseSize,
  SETTINGS,
} from "../../../relay/config/config.ts";

Deno.test("parseDuration() reads ms, s, m, h and d", () => {
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("15m"), 900_000);
  assert.equal(parseDuration("24h"), 86_400_000);
  assert.equal(parseDuration("30d"), 30 * 86_400_000);
  assert.equal(parseDuration("1.5h"), 5_400_000);
  assert.equal(parseDuration(" 2s "), 2000);
  for (const bad of ["", "soon", "10", "-5m", "5 m", "5w", "1e3s", "s", "5M", "1h30m"]) {
    assert.throws(() => parseDuration(bad), /expected a duration like 500ms/, bad);
  }
});

Deno.test("parseSize() reads bytes, KiB, MiB, GiB and decimal units", () => {
  assert.equal(parseSize("65536"), 65_536);
  assert.equal(parseSize("64KiB"), 65_536);
  assert.equal(parseSize("64kib"), 65_536);
  assert.equal(parseSize("100MiB"), 100 * 1024 * 1024);
  assert.equal(parseSize("1GiB"), 1024 ** 3);
  assert.equal(parseSize("10kB"), 10_000);
  assert.equal(parseSize("2 MB"), 2_000_000);
  assert.equal(parseSize("12b"), 12);
  for (const bad of ["", "big", "-1", "1.5MiB", "64KiBs", "MiB", "10TB"]) {
    assert.throws(() => parseSize(bad), /expected a size like 65536, 64KiB or 100MiB/, bad);
  }
});

Deno.test("parseRate() reads count per second, minute or hour, and off", () => {
  assert.deepEqual(parseRate("100/min"), { count: 100, perMs: 60_000 });
  assert.deepEqual(parseRate("5/s"), { count: 5, perMs: 1000 });
  assert.deepEqual(parseRate("1000/h"), { count: 1000, perMs: 3_600_000 });
  assert.deepEqual(parseRate("30/m"), { count: 30, perMs: 60_000 });
  assert.equal(parseRate("off"), null);
  assert.equal(parseRate("OFF"), null);
  for (const bad of ["", "0/min", "fast", "10/week", "10", "/min", "-1/s", "1.5/s", "on"]) {
    assert.throws(
      () => parseRate(bad),
      /expected a rate like 100\/min, 5\/s, 1000\/h, or off/,
      bad,
    );
  }
});

Deno.test("loadConfig() gives the documented defaults", () => {
  const config = loadConfig({});
  assert.equal(config.port, 8080);
  assert.equal(config.host, "0.0.0.0");
  assert.equal(config.dataDir, "./data");
  assert.equal(config.publicUrl, "http://localhost:8080");
  assert.equal(config.databaseUrl, undefined);
  assert.equal(config.databaseReplicaUrl, undefined);
  assert.equal(config.blobStore, "fs");
  assert.equal(config.registration, "open");
  assert.equal(config.retention, 30 * 86_400_000);
  assert.equal(config.maxTtl, 365 * 86_400_000);
  assert.equal(config.inactiveAfter, 90 * 86_400_000);
  assert.equal(config.deleteAfter, 180 * 86_400_000);
  assert.equal(config.sweepInterval, 60_000);
  assert.equal(config.maxMessageBytes, 64 * 1024);
  assert.equal(config.maxBlobBytes, 100 * 1024 * 1024);
  assert.deepEqual(config.rateSend, { count: 100, perMs: 60_000 });
  assert.deepEqual(config.ratePoll, { count: 200, perMs: 60_000 });
  assert.deepEqual(config.rateAuth, { count: 30, perMs: 60_000 });
  assert.deepEqual(config.rateClaim, { count: 60, perMs: 60_000 });
  assert.equal(config.tokenTtl, 86_400_000);
  assert.equal(config.adminPassword, undefined);
  assert.equal(config.metricsToken, undefined);
  assert.equal(config.logLevel, "info");
  assert.equal(config.logFormat, undefined);
  assert.ok(Object.isFrozen(config));
});

Deno.test("loadConfig() reads the environment, and --flags win over it", () => {
  const env = {
    PORT: "9000",
    SEALPOST_REGISTRATION: "invite",
    SEALPOST_RATE_AUTH: "off",
    SEALPOST_MAX_TTL: "forever",
    DATABASE_URL: "postgres://u:p@db:5432/sealpost",
  };
  const fromEnv = loadConfig(env);
  assert.equal(fromEnv.port, 9000);
  assert.equal(fromEnv.publicUrl, "http://localhost:9000", "the public URL follows PORT");
  assert.equal(fromEnv.registration, "invite");
  assert.equal(fromEnv.rateAuth, null);
  assert.equal(fromEnv.maxTtl, null);
  assert.equal(fromEnv.databaseUrl, "postgres://u:p@db:5432/sealpost");

  const withFlags = loadConfig(env, {
    port: "9100",
    registration: "closed",
    "public-url": "https://relay.example.com/",
  });
  assert.equal(withFlags.port, 9100);
  assert.equal(withFlags.registration, "closed");
  assert.equal(withFlags.publicUrl, "https://relay.example.com");
});

Deno.test("loadConfig() treats an empty variable as unset", () => {
  const config = loadConfig({ PORT: "", DATABASE_URL: "", SEALPOST_LOG_FORMAT: "" });
  assert.equal(config.port, 8080);
  assert.equal(config.databaseUrl, undefined);
  assert.equal(config.logFormat, undefined);
});

Deno.test("loadConfig() stops on a bad value with one line naming variable, value and accepted values", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: "http" }, /^Cannot parse PORT: expected a port number from 0 to 65535, got 'http'$/],
    [{ PORT: "70000" }, /^Cannot parse PORT: .*got '70000'$/],
    [{ PORT: "0x50" }, /^Cannot parse PORT: .*got '0x50'$/],
    [{ PORT: "80.5" }, /^Cannot parse PORT: .*got '80.5'$/],
    [
      { SEALPOST_RETENTION: "soon" },
      /^Cannot parse SEALPOST_RETENTION: expected a duration like 500ms, 90s, 15m, 24h or 30d, got 'soon'$/,
    ],
    [{ SEALPOST_MAX_TTL: "always" }, /^Cannot parse SEALPOST_MAX_TTL: .*duration.*got 'always'$/],
    [{ SEALPOST_TOKEN_TTL: "1 day" }, /^Cannot parse SEALPOST_TOKEN_TTL: .*got '1 day'$/],
    [
      { SEALPOST_MAX_MESSAGE_BYTES: "lots" },
      /^Cannot parse SEALPOST_MAX_MESSAGE_BYTES: expected a size like 65536, 64KiB or 100MiB, got 'lots'$/,
    ],
    [
      { SEALPOST_RATE_AUTH: "many" },
      /^Cannot parse SEALPOST_RATE_AUTH: expected a rate like 100\/min, 5\/s, 1000\/h, or off, got 'many'$/,
    ],
    [
      { SEALPOST_REGISTRATION: "invites" },
      /^Cannot parse SEALPOST_REGISTRATION: expected one of open, invite, closed, got 'invites'$/,
    ],
    [{ SEALPOST_BLOB_STORE: "gcs" }, /^Cannot parse SEALPOST_BLOB_STORE: expected one of fs, s3/],
    [{ SEALPOST_LOG_LEVEL: "trace" }, /^Cannot parse SEALPOST_LOG_LEVEL: expected one of debug/],
    [{ SEALPOST_LOG_FORMAT: "xml" }, /^Cannot parse SEALPOST_LOG_FORMAT: expected one of pretty/],
    [
      { DATABASE_URL: "mysql://x" },
      /^Cannot parse DATABASE_URL: expected a URL like postgres:\/\//,
    ],
    [{ DATABASE_REPLICA_URL: "db:5432" }, /^Cannot parse DATABASE_REPLICA_URL: /],
    [
      { SEALPOST_PUBLIC_URL: "relay.example.com" },
      /^Cannot parse SEALPOST_PUBLIC_URL: expected an absolute URL/,
    ],
  ];
  for (const [env, expected] of cases) {
    assert.throws(() => loadConfig(env), (error: unknown) => {
      assert.ok(error instanceof ConfigError, `${JSON.stringify(env)} gives a ConfigError`);
      assert.match(error.message, expected);
      assert.ok(!error.message.includes("\n"), "one line");
      return true;
    });
  }
});

Deno.test("loadConfig() names the --flag when the bad value came from a flag", () => {
  assert.throws(
    () => loadConfig({ SEALPOST_RETENTION: "30d" }, { retention: "soon" }),
    /ConfigError: Cannot parse --retention: expected a duration.*got 'soon'$/,
  );
});

Deno.test("loadConfig() refuses SEALPOST_DELETE_AFTER not longer than SEALPOST_INACTIVE_AFTER", () => {
  assert.throws(
    () => loadConfig({ SEALPOST_INACTIVE_AFTER: "30d", SEALPOST_DELETE_AFTER: "30d" }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /SEALPOST_DELETE_AFTER.*SEALPOST_INACTIVE_AFTER.*got '30d'/);
      assert.ok(!error.message.includes("\n"));
      return true;
    },
  );
  assert.throws(
    () =>
      loadConfig({ SEALPOST_DELETE_AFTER: "1d" }, { "delete-after": "2d", "inactive-after": "3d" }),
    /got '2d'/,
    "the value shown is the one that was used",
  );
  assert.equal(
    loadConfig({ SEALPOST_INACTIVE_AFTER: "1h", SEALPOST_DELETE_AFTER: "2h" }).deleteAfter,
    7_200_000,
  );
});

Deno.test("describeSettings() lists every variable with its flag and default", () => {
  const text = describeSettings();
  for (const setting of Object.values(SETTINGS)) {
    const line = text.split("\n").find((l) => l.includes(` ${setting.env} `));
    assert.ok(line, `${setting.env} is listed`);
    assert.ok(line.includes(`--${setting.flag}`), `${setting.env} shows --${setting.flag}`);
    if (setting.default !== undefined) {
      assert.ok(line.includes(`(default ${setting.default})`), `${setting.env} shows its default`);
    }
  }
});

Deno.test("docs/configuration.md documents every setting with its flag and default", async () => {
  const doc = await Deno.readTextFile(new URL("../../../docs/configuration.md", import.meta.url));
  // Rows of the settings table: | `VARIABLE` | `--flag` | default | meaning | example |
  const rows = new Map(
    doc.split("\n").filter((line) => line.startsWith("| `")).map((line) => {
      const cells = line.split("|").slice(1, -1).map((cell) => cell.trim());
      return [cells[0].replaceAll("`", ""), cells] as const;
    }),
  );
  for (const setting of Object.values(SETTINGS)) {
    const cells = rows.get(setting.env);
    assert.ok(cells, `docs/configuration.md has a row for ${setting.env}`);
    assert.equal(cells[1], `\`--${setting.flag}\``, `${setting.env} row shows --${setting.flag}`);
    if (setting.default !== undefined) {
      assert.equal(cells[2], `\`${setting.default}\``, `${setting.env} row shows its default`);
    } else {
      assert.match(cells[2], /^unset/, `${setting.env} row says it is unset by default`);
    }
  }
  const known = new Set(Object.values(SETTINGS).map((s) => s.env as string));
  for (const [env, cells] of rows) {
    if (cells.length === 5) assert.ok(known.has(env), `${env} in the docs is a real setting`);
  }
});

Deno.test("loadConfig() reads each secret from its *_FILE variable, without the trailing newline", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sealpost-secrets-" });
  try {
    const files: Record<string, string> = {
      DATABASE_URL: "postgres://sealpost:pw@db:5432/sealpost",
      DATABASE_REPLICA_URL: "postgres://sealpost:pw@replica:5432/sealpost",
      AWS_ACCESS_KEY_ID: "key-id",
      AWS_SECRET_ACCESS_KEY: "secret key",
      SEALPOST_ADMIN_PASSWORD: "an admin password",
      SEALPOST_METRICS_TOKEN: "metrics-token",
    };
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, `${value}\n`);
      env[`${name}_FILE`] = `${dir}/${name}`;
    }
    const config = loadConfig(env);
    assert.equal(config.databaseUrl, files.DATABASE_URL);
    assert.equal(config.databaseReplicaUrl, files.DATABASE_REPLICA_URL);
    assert.equal(config.s3AccessKeyId, "key-id");
    assert.equal(config.s3SecretAccessKey, "secret key");
    assert.equal(config.adminPassword, "an admin password");
    assert.equal(config.metricsToken, "metrics-token");
    // A flag still wins over the file.
    assert.equal(loadConfig(env, { "metrics-token": "flag" }).metricsToken, "flag");

    assert.throws(
      () => loadConfig({ ...env, DATABASE_URL: "postgres://x@y/z" }),
      (e: Error) =>
        e instanceof ConfigError &&
        e.message ===
          "Cannot use DATABASE_URL_FILE: DATABASE_URL is set too, got both (set one of them)",
    );
    assert.throws(
      () => loadConfig({ SEALPOST_ADMIN_PASSWORD_FILE: `${dir}/nope` }),
      (e: Error) =>
        e instanceof ConfigError &&
        e.message === `Cannot read SEALPOST_ADMIN_PASSWORD_FILE: no such file, got '${dir}/nope'`,
    );
    // A bad value from a file names the file variable and never echoes the secret.
    await Deno.writeTextFile(`${dir}/bad_url`, "mysql://root:hunter2@db/x\n");
    assert.throws(
      () => loadConfig({ DATABASE_URL_FILE: `${dir}/bad_url` }),
      (e: Error) =>
        e instanceof ConfigError && e.message.startsWith("Cannot parse DATABASE_URL_FILE:") &&
        !e.message.includes("hunter2"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Tests of commands/help.ts: each command's `--help` shows its own usage, flags and only the
 * settings it reads, while `serve --help` keeps the whole table.
 */

import assert from "node:assert/strict";
import { SETTINGS } from "../../relay/config/config.ts";
import { COMMAND_HELP } from "../../commands/help.ts";
import { runCli } from "../helpers/cli.ts";

const ALL = Object.values(SETTINGS).length;
const settingLines = (text: string) => text.split("\n").filter((l) => /^ {2}--[a-z]/.test(l));

Deno.test("each command's --help lists its own flags and settings, not serve's table", async () => {
  const serve = await runCli(["serve", "--help"]);
  assert.equal(settingLines(serve.stdout).length, ALL);

  const migrate = await runCli(["migrate", "--help"]);
  assert.equal(migrate.code, 0);
  assert.match(migrate.stdout, /^Usage: sealpost migrate \[--to N\]/);
  assert.match(migrate.stdout, /--to N +a migration number or name/);
  assert.match(migrate.stdout, /--database-url +DATABASE_URL /);
  assert.doesNotMatch(migrate.stdout, /--rate-send|--apns-key-id|--port /);

  const doctor = await runCli(["doctor", "--help"]);
  assert.match(doctor.stdout, /--apns-key-file +SEALPOST_APNS_KEY_FILE/);
  assert.match(doctor.stdout, /--s3-public-url +SEALPOST_S3_PUBLIC_URL/);
  assert.doesNotMatch(doctor.stdout, /--rate-send/);

  const health = await runCli(["healthcheck", "--help"]);
  assert.deepEqual(settingLines(health.stdout).map((l) => l.trim().split(/\s+/)[0]), [
    "--port",
    "--host",
  ]);
  const sweep = await runCli(["sweep", "--help"]);
  assert.match(sweep.stdout, /--dry-run +only count/);
});

Deno.test("COMMAND_HELP names only settings that exist, and every command but serve and admin", () => {
  for (const [command, help] of Object.entries(COMMAND_HELP)) {
    for (const key of help.settings ?? []) assert.ok(key in SETTINGS, `${command}: ${key}`);
    assert.ok(help.about.length > 10, `${command} says what it does`);
  }
  assert.deepEqual(Object.keys(COMMAND_HELP).sort(), [
    "backup",
    "doctor",
    "export",
    "healthcheck",
    "import",
    "migrate",
    "restore",
    "sweep",
  ]);
});

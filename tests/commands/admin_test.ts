/**
 * @module
 * `sealpost admin …` run as a user runs it (a child process): invites, devices, set-password,
 * usage errors; and a revoke from the command line closing a live WebSocket with 4003 on a relay
 * sharing the same Postgres (the event travels over LISTEN/NOTIFY).
 */

import assert from "node:assert/strict";
import { checkAdminPassword } from "../../admin/auth.ts";
import { openPglite } from "../../relay/store/database.ts";
import { newAccount } from "../helpers/accounts.ts";
import { runCli } from "../helpers/cli.ts";
import { dbUnavailable, startTestRelay } from "../helpers/relay.ts";
import { RawSocket } from "../helpers/ws.ts";

Deno.test({
  name: "sealpost admin manages invites, devices and the password of an embedded relay",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // A relay registers two devices, then stops: PGlite is single-process.
    const t = await startTestRelay();
    const [a, b] = await newAccount(t.url, 2);
    await t.stop();
    const env = { SEALPOST_DATA_DIR: t.dataDir };

    const created = await runCli(
      ["admin", "invites", "create", "--uses", "2", "--expires", "7d", "--note", "cli", "--json"],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    const invite = JSON.parse(created.stdout);
    assert.equal(invite.max_uses, 2);
    assert.match(invite.code, /^[A-Za-z0-9_-]{20,}$/);
    assert.ok(invite.link.endsWith(`/join?invite=${invite.code}`));

    const revoked = await runCli(["admin", "invites", "revoke", invite.id], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    const listed = await runCli(["admin", "invites", "list"], env);
    assert.match(listed.stdout, new RegExp(`${invite.id}\\s+revoked\\s+0/2`));

    const devices = await runCli(["admin", "devices", "list", "--json"], env);
    assert.equal(devices.code, 0, devices.stderr);
    assert.deepEqual(
      JSON.parse(devices.stdout).devices.map((d: { id: string }) => d.id).sort(),
      [a.device, b.device].sort(),
    );
    const revoke = await runCli(["admin", "devices", "revoke", a.device], env);
    assert.equal(revoke.code, 0, revoke.stderr);
    const after = await runCli(["admin", "devices", "list", "--status", "revoked"], env);
    assert.match(after.stdout, new RegExp(a.device));
    assert.doesNotMatch(after.stdout, new RegExp(b.device));

    const password = await runCli(
      ["admin", "set-password", "--password", "a long cli password"],
      env,
    );
    assert.equal(password.code, 0, password.stderr);

    const missing = await runCli(["admin", "devices", "revoke", "nope"], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such device/);
    const usage = await runCli(["admin", "devices", "explode"], env);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /Unknown admin command 'devices explode'/);

    const db = await openPglite(`${t.dataDir}/pg`);
    try {
      assert.equal(await checkAdminPassword(db.db, undefined, "a long cli password"), true);
      const audit = await db.db.selectFrom("audit_log").select(["actor", "action"])
        .where("actor", "=", "cli").orderBy("id").execute();
      assert.deepEqual(audit.map((r) => r.action), [
        "invite.create",
        "invite.revoke",
        "device.revoke",
        "admin.password",
      ]);
    } finally {
      await db.close();
    }
  },
});

const why = dbUnavailable("postgres");
Deno.test({
  name: "sealpost admin devices revoke closes the device's socket on a running relay (postgres)",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const t = await startTestRelay({ db: "postgres" });
    try {
      const [device] = await newAccount(t.url, 1);
      const socket = await RawSocket.authed(t.wsUrl, device.token);
      const result = await runCli(["admin", "devices", "revoke", device.device], {
        DATABASE_URL: t.databaseUrl!,
        SEALPOST_DATA_DIR: t.dataDir,
      });
      assert.equal(result.code, 0, result.stderr);
      const closed = await Promise.race([
        socket.closed,
        new Promise<null>((r) => setTimeout(() => r(null), 10_000)),
      ]);
      assert.equal(closed?.code, 4003);
    } finally {
      await t.stop();
    }
  },
});

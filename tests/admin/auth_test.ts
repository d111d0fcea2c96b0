/**
 * @module
 * Admin credentials (`admin/auth.ts`): PBKDF2 hashes, the stored password, sessions and
 * the single use of a setup token, on both databases.
 */

import assert from "node:assert/strict";
import {
  checkAdminPassword,
  completeSetup,
  createAdminSession,
  createSetupToken,
  findAdminSession,
  hashPassword,
  PBKDF2_ITERATIONS,
  setAdminPassword,
  verifyPassword,
} from "../../admin/auth.ts";
import { startTestRelay, testBothDatabases } from "../helpers/relay.ts";

Deno.test("hashPassword() is salted PBKDF2-SHA256 with at least 600,000 iterations", async () => {
  assert.ok(PBKDF2_ITERATIONS >= 600_000);
  const a = await hashPassword("correct horse battery staple");
  const b = await hashPassword("correct horse battery staple");
  assert.match(a, /^pbkdf2-sha256\$600000\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a, b, "each hash has its own salt");
  assert.equal(await verifyPassword("correct horse battery staple", a), true);
  assert.equal(await verifyPassword("correct horse battery stapler", a), false);
  assert.equal(await verifyPassword("x", "md5$abc"), false);
  assert.equal(await verifyPassword("x", ""), false);
});

testBothDatabases(
  "a stored admin password logs in, ends old sessions and a setup token works once",
  async (kind) => {
    const t = await startTestRelay({ db: kind });
    try {
      const db = t.database.db;
      const token = await createSetupToken(db, t.clock);
      const results = await Promise.all([
        completeSetup(db, t.clock, token, "first password here"),
        completeSetup(db, t.clock, token, "second password here"),
      ]);
      assert.deepEqual(results.filter(Boolean).length, 1, "only one visitor wins the setup link");
      const winner = results[0] ? "first password here" : "second password here";
      assert.equal(await checkAdminPassword(db, undefined, winner), true);
      assert.equal(await checkAdminPassword(db, "env wins here", winner), false);
      assert.equal(await checkAdminPassword(db, "env wins here", "env wins here"), true);

      const { token: cookie } = await createAdminSession(db, t.clock, "127.0.0.1");
      assert.ok(await findAdminSession(db, t.clock, cookie));
      await setAdminPassword(db, t.clock, "a brand new password");
      assert.equal(await findAdminSession(db, t.clock, cookie), null, "sessions end");
      assert.equal(await checkAdminPassword(db, undefined, winner), false);
      assert.equal(await checkAdminPassword(db, undefined, "a brand new password"), true);
      await assert.rejects(() => setAdminPassword(db, t.clock, "short"), /at least 10/);
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "expired admin sessions and setup tokens are deleted when the dashboard starts",
  async (kind) => {
    const first = await startTestRelay({ db: kind });
    let second: Awaited<ReturnType<typeof startTestRelay>> | null = null;
    try {
      const db = first.database.db;
      const { token: live } = await createAdminSession(db, first.clock, "127.0.0.1");
      await db.insertInto("admin_sessions").values({
        token_hash: "expired-session",
        created_at: 0,
        expires_at: 1,
        last_used_at: 0,
        ip: null,
      }).execute();
      await db.insertInto("admin_setup_tokens")
        .values({ token_hash: "expired-setup", expires_at: 1 }).execute();
      await first.stop();
      second = await startTestRelay({
        db: kind,
        dataDir: first.dataDir,
        databaseUrl: first.databaseUrl,
      });
      const sessions = await second.database.db.selectFrom("admin_sessions").select("token_hash")
        .execute();
      assert.equal(sessions.length, 1, "only the live session is left");
      assert.ok(await findAdminSession(second.database.db, second.clock, live));
      const setup = await second.database.db.selectFrom("admin_setup_tokens")
        .select("token_hash").where("token_hash", "=", "expired-setup").execute();
      assert.deepEqual(setup, []);
    } finally {
      await second?.stop();
    }
  },
);

/**
 * Restart persistence: a relay stopped and started again on the same data directory (PGlite) or
 * the same database (Postgres) still knows its devices, tokens, revocations, invites and
 * run-time settings.
 */

import assert from "node:assert/strict";
import { generateKeyPair, HttpClient } from "../../client/mod.ts";
import { createInvite } from "../../relay/accounts/invites.ts";
import { startTestRelay, testBothDatabases } from "../helpers/relay.ts";
import { assertRejects, call, registered } from "../helpers/http.ts";

testBothDatabases("a restarted relay still knows its devices, tokens and settings", async (db) => {
  const first = await startTestRelay({ db });
  const dataDir = first.dataDir;
  try {
    const root = await generateKeyPair();
    const kept = await registered(first, { account: root, name: "kept" });
    const lost = await registered(first, { account: root, name: "lost" });
    await kept.api.revokeDevice(lost.me.device.id);
    await first.relay.deps.settings.set("registration", "invite", "test");
    const { code } = await createInvite(first.relay.deps.db, first.clock, { maxUses: 1 });
    // Two hours on: last_seen_at is kept rounded down to the hour (SEALPOST_LAST_SEEN_GRANULARITY),
    // so only a flush of this later activity can show this hour.
    first.clock.advance(2 * 3_600_000);
    await kept.api.devices(root.id); // activity not yet flushed…
    const seenAt = Math.floor(first.clock.now() / 3_600_000) * 3_600_000;
    await first.stop(); // …until the relay stops.

    const second = await startTestRelay({ db, dataDir, databaseUrl: first.databaseUrl });
    try {
      // The old token still works, and so does a fresh login.
      const old = await call(second.url, "GET", `/v1/accounts/${root.id}/devices`, {
        token: kept.api.token!,
      });
      assert.equal(old.status, 200);
      const byName = new Map(
        old.body.devices.map((d: { name: string }) => [d.name, d] as const),
      ) as Map<string, { status: string; last_seen_at: number }>;
      assert.equal(byName.get("kept")?.status, "active");
      assert.equal(byName.get("kept")?.last_seen_at, seenAt, "activity was flushed at stop");
      assert.equal(byName.get("lost")?.status, "revoked");

      const api = new HttpClient(second.url);
      await api.login(kept.me);
      await assertRejects(new HttpClient(second.url).login(lost.me), 403, "device_revoked");

      // Run-time settings and invites survive: the stored mode wins over the environment.
      assert.equal((await call(second.url, "GET", "/v1/info")).body.registration, "invite");
      const newcomer = await registered(second, { invite: code });
      assert.equal(newcomer.status, 201);
    } finally {
      await second.stop();
    }
  } finally {
    await first.stop();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});

/**
 * @module
 * Run-time settings (`relay/config/runtime.ts`): parsing what admins type, checks across
 * values, one audit entry per change, changes made elsewhere reaching this instance, and a rate
 * limit changed at run time applying without a restart.
 */

import assert from "node:assert/strict";
import { HttpClient, SealpostError } from "../../../client/mod.ts";
import {
  formatDurationS,
  formatRate,
  parseRuntimeValue,
  RuntimeSettings,
} from "../../../relay/config/runtime.ts";
import { listAudit } from "../../../admin/queries.ts";
import { RelayError } from "../../../relay/errors.ts";
import { startTestRelay, testBothDatabases } from "../../helpers/relay.ts";

Deno.test("parseRuntimeValue() reads durations, rates and modes as admins type them", () => {
  assert.equal(parseRuntimeValue("retention_s", "7d"), 604_800);
  assert.equal(parseRuntimeValue("retention_s", "0"), 0);
  assert.equal(parseRuntimeValue("inactive_after_s", "90m"), 5400);
  assert.equal(parseRuntimeValue("rate_send", "5/s"), "5/s");
  assert.equal(parseRuntimeValue("rate_poll", " OFF "), "off");
  assert.equal(parseRuntimeValue("registration", "invite"), "invite");
  for (
    const [key, text] of [
      ["retention_s", "soon"],
      ["inactive_after_s", "0"],
      ["rate_auth", "lots"],
      ["registration", "maybe"],
    ] as const
  ) {
    assert.throws(() => parseRuntimeValue(key, text), RelayError, `${key} '${text}'`);
  }
  assert.throws(() => parseRuntimeValue("retention_s", "soon"), /Cannot parse retention: .*'soon'/);
  assert.equal(formatRate({ count: 100, perMs: 60_000 }), "100/min");
  assert.equal(formatRate(null), "off");
  assert.equal(formatDurationS(90 * 86_400), "90d");
  assert.equal(formatDurationS(5400), "90m");
  assert.equal(formatDurationS(61), "61s");
});

testBothDatabases(
  "RuntimeSettings.update() audits each change and checks thresholds",
  async (kind) => {
    const t = await startTestRelay({ db: kind });
    try {
      const settings = t.relay.deps.settings;
      const changed = await settings.update(
        { registration: "invite", retention_s: 3600, rate_send: "100/min" },
        "admin:test",
      );
      assert.deepEqual(changed.sort(), ["registration", "retention_s"], "unchanged values skipped");
      const audit = await listAudit(t.relay.deps, { action: "setting." });
      assert.deepEqual(audit.map((a) => a.action).sort(), [
        "setting.registration",
        "setting.retention_s",
      ]);
      assert.deepEqual(audit.find((a) => a.action === "setting.retention_s")?.detail, {
        before: 30 * 86_400,
        after: 3600,
      });
      await assert.rejects(
        () => settings.update({ delete_after_s: 60 }, "admin:test"),
        /delete after must be longer than inactive after/,
      );

      // Another instance on the same database sees the change on its next reload.
      const other = new RuntimeSettings(t.database.db, t.clock, { ...settings.current });
      let heard = 0;
      other.onChange(() => heard++);
      await settings.update({ registration: "closed" }, "admin:test");
      assert.equal((await other.reload()).registration, "closed");
      assert.equal(heard, 1);
    } finally {
      await t.stop();
    }
  },
);

Deno.test({
  name: "a rate limit changed at run time applies without a restart",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const t = await startTestRelay({ env: { SEALPOST_RATE_AUTH: "off" } });
    try {
      const api = new HttpClient(t.url);
      for (let i = 0; i < 5; i++) await api.challenge();
      await t.relay.deps.settings.update({ rate_auth: "2/min" }, "admin:test");
      await api.challenge();
      await api.challenge();
      await assert.rejects(
        () => api.challenge(),
        (e: unknown) => e instanceof SealpostError && e.code === "rate_limited",
      );
      const info = await api.info();
      assert.deepEqual(info.limits.rate_auth, { count: 2, per_s: 60 });
    } finally {
      await t.stop();
    }
  },
});

/**
 * /metrics after a scripted workload: counters moved by exactly the right amounts, and the text
 * passes `promtool check metrics` (Debian `prometheus`).
 */
import assert from "node:assert/strict";
import { SealpostError } from "../../../client/mod.ts";
import { cipher, newAccount, newDevice } from "../../helpers/accounts.ts";
import { startTestRelay, testBothDatabases } from "../../helpers/relay.ts";
import { RawSocket } from "../../helpers/ws.ts";

/** Parses the Prometheus text format into `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function findPromtool(): string | null {
  for (const path of ["/usr/bin/promtool", "/usr/local/bin/promtool"]) {
    try {
      Deno.statSync(path);
      return path;
    } catch { /* next */ }
  }
  return null;
}

testBothDatabases(
  "GET /metrics counts a scripted workload exactly and passes promtool",
  async (db) => {
    const t = await startTestRelay({
      db,
      env: {
        SEALPOST_MAX_MESSAGE_BYTES: "1KiB",
        SEALPOST_METRICS_TOKEN: "scrape-secret",
        SEALPOST_RATE_POLL: "2/min",
      },
    });
    try {
      const scrape = async () => {
        const res = await fetch(`${t.url}/metrics`, {
          headers: { authorization: "Bearer scrape-secret" },
        });
        assert.equal(res.status, 200);
        assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
        return await res.text();
      };
      const denied = await fetch(`${t.url}/metrics`);
      assert.equal(denied.status, 401);
      await denied.body?.cancel();

      const [alice, aliceLaptop] = await newAccount(t.url, 2);
      const bob = await newDevice(t.url);
      const eve = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      const ws = await RawSocket.authed(t.wsUrl, bob.token);
      ws.send({ t: "sub", groups: null });
      await ws.next((f) => f.t === "synced");
      const before = parseMetrics(await scrape());

      for (let i = 0; i < 10; i++) {
        await alice.api.send(group.id, {
          body: cipher(100),
          client_id: `m${i}`,
        });
      }
      await alice.api.send(group.id, { body: cipher(100), client_id: "m0" }); // a repeat: not counted
      await assert.rejects(alice.api.send(group.id, { body: cipher(2000) }), SealpostError);
      await assert.rejects(eve.api.send(group.id, { body: cipher() }), SealpostError);
      await alice.api.send(group.id, { body: cipher(), ephemeral: true });
      await ws.take(10, (f) => f.t === "msg");
      await ws.next((f) => f.t === "eph");
      for (let i = 0; i < 3; i++) await bob.api.inbox().catch(() => {});
      await aliceLaptop.api.revokeDevice(alice.device);
      const aliceWs = await RawSocket.open(t.wsUrl);
      aliceWs.send({ t: "auth", token: alice.token });
      assert.equal((await aliceWs.closed).code, 4003);

      const text = await scrape();
      const after = parseMetrics(text);
      const moved = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
      assert.equal(moved("sealpost_messages_accepted_total"), 10);
      assert.equal(moved('sealpost_messages_rejected_total{reason="too_large"}'), 1);
      assert.equal(moved('sealpost_messages_rejected_total{reason="not_found"}'), 1);
      assert.equal(moved("sealpost_ephemeral_messages_total"), 1);
      assert.equal(moved('sealpost_deliveries_total{path="live"}'), 10);
      assert.equal(moved('sealpost_rate_limited_total{limit="poll"}'), 1);
      assert.ok(moved("sealpost_message_bytes_in_total") >= 10 * 100);
      assert.ok(moved("sealpost_message_bytes_out_total") > 10 * 100);
      // Every send that reached group commit: 10 new, the repeat and the non-member's.
      assert.equal(moved("sealpost_send_commit_seconds_count"), 12);
      assert.equal(moved("sealpost_send_deliver_seconds_count"), 10);
      assert.ok(moved("sealpost_group_commit_batch_size_count") >= 1);
      assert.ok(moved('sealpost_db_query_seconds_count{outcome="ok"}') > 0);
      assert.equal(after.get("sealpost_websocket_connections"), 1);
      assert.equal(after.get("sealpost_devices_online"), 1);

      const promtool = findPromtool();
      if (!promtool) {
        if (Deno.env.get("CI") === "true") {
          throw new Error(
            "CI=true but promtool is missing (apt-get install prometheus)",
          );
        }
        console.warn("promtool not installed: skipping the format check");
      } else {
        const check = new Deno.Command(promtool, {
          args: ["check", "metrics"],
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        })
          .spawn();
        const writer = check.stdin.getWriter();
        await writer.write(new TextEncoder().encode(text));
        await writer.close();
        const out = await check.output();
        const report = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assert.ok(out.success, `promtool check metrics failed:\n${report}`);
      }
      ws.close();
    } finally {
      await t.stop();
    }
  },
);

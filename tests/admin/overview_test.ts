/**
 * @module
 * The overview across instances: two relays on one Postgres both appear in each one's instance
 * table (through the shared instance registry), each counting its own live connections.
 */

import assert from "node:assert/strict";
import { overviewHtml } from "../helpers/admin.ts";
import { newAccount } from "../helpers/accounts.ts";
import { dbUnavailable, startTestRelay } from "../helpers/relay.ts";
import { RawSocket } from "../helpers/ws.ts";

const PASSWORD = "correct horse battery staple";
const why = dbUnavailable("postgres");

Deno.test({
  name: "the overview lists every live instance of the cluster with its connections",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const env = { SEALPOST_ADMIN_PASSWORD: PASSWORD };
    const a = await startTestRelay({ db: "postgres", env: { ...env, SEALPOST_REGION: "ams" } });
    const b = await startTestRelay({
      db: "postgres",
      databaseUrl: a.databaseUrl,
      env: { ...env, SEALPOST_REGION: "sjc" },
    });
    const sockets: RawSocket[] = [];
    try {
      const [d1, d2] = await newAccount(a.url, 2);
      sockets.push(await RawSocket.authed(b.wsUrl, d1.token));
      sockets.push(await RawSocket.authed(b.wsUrl, d2.token));
      await b.relay.registry.heartbeat();
      const html = await overviewHtml(a.url);
      const rows = [...html.matchAll(/<tr data-instance="([^"]+)">(.*?)<\/tr>/gs)];
      assert.equal(rows.length, 2, "both instances are listed");
      const [self, other] = rows;
      assert.equal(self[1], a.config.instanceId, "this instance first");
      assert.match(self[2], /\(this one\).*ams/s);
      assert.equal(other[1], b.config.instanceId);
      assert.match(other[2], /sjc.*<td class="num">2<\/td>/s, "the other's two connections");
      assert.match(html, /data-stat="connections"><dt>[^<]*<\/dt><dd>2<\/dd>/, "cluster total");
    } finally {
      for (const s of sockets) s.close();
      await b.stop();
      await a.stop();
    }
  },
});

/**
 * With OTEL_DENO=true the relay exports OTLP traces that include its own spans for the WebSocket
 * path: authentication, the send, the group commit and the fan-out.
 */
import assert from "node:assert/strict";
import { Session } from "../../client/mod.ts";
import { newDevice } from "../helpers/accounts.ts";
import { freePort } from "../helpers/postgres.ts";
import { Instance } from "../helpers/topology.ts";

Deno.test({
  name: "OTEL_DENO=true exports spans for ws auth, send, group commit and fan-out",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sealpost-otel-" });
    const bodies: string[] = [];
    const collector = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const body = new TextDecoder("latin1").decode(new Uint8Array(await req.arrayBuffer()));
      if (new URL(req.url).pathname === "/v1/traces") bodies.push(body);
      return new Response("{}", { headers: { "content-type": "application/json" } });
    });
    const relay = new Instance("otel", freePort(), {
      SEALPOST_DATA_DIR: `${dir}/data`,
      SEALPOST_RATE_AUTH: "off",
      OTEL_DENO: "true",
      OTEL_SERVICE_NAME: "sealpost",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collector.addr.port}`,
    }, `${dir}/relay.log`);
    try {
      await relay.start();
      const alice = await newDevice(relay.url);
      const group = await alice.api.createGroup();
      const session = new Session(alice.api, { groups: [group.id] });
      await session.ready();
      await session.send(group.id, { body: "AAAA" });
      session.close();
      const wanted = [
        "sealpost.ws.auth",
        "sealpost.send",
        "sealpost.group_commit",
        "sealpost.fan_out",
      ];
      const deadline = Date.now() + 20_000;
      while (!wanted.every((n) => bodies.some((b) => b.includes(n))) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
      }
      for (const name of wanted) {
        assert.ok(bodies.some((b) => b.includes(name)), `span ${name} exported`);
      }
    } finally {
      await relay.terminate();
      await collector.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

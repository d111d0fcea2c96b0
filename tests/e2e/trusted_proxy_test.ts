/**
 * `SEALPOST_TRUSTED_PROXIES` through a real haproxy (`option forwardfor`) in front of a relay:
 * clients connecting to the proxy from different loopback addresses get separate per-address
 * auth limits, a forged `X-Forwarded-For` buys nothing, and a client reaching the relay
 * directly cannot claim another address.
 */

import assert from "node:assert/strict";
import { findHaproxy, topologyUnavailable } from "../helpers/topology.ts";
import { freePort } from "../helpers/postgres.ts";
import { startTestRelay } from "../helpers/relay.ts";

const why = topologyUnavailable();

/** Starts haproxy on a free loopback port, forwarding to `target` with X-Forwarded-For. */
async function startHaproxy(target: URL): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "sealpost-proxy-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/haproxy.cfg`,
    `global
  maxconn 200
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:${port}
  option forwardfor
  default_backend be
backend be
  server relay ${target.hostname}:${target.port}
`,
  );
  const child = new Deno.Command(findHaproxy()!, {
    args: ["-f", `${dir}/haproxy.cfg`, "-db"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${url}/healthz`).then((r) => r.body?.cancel().then(() => r.ok))
      .catch(() => false);
    if (ok) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url,
    stop: async () => {
      child.kill("SIGKILL");
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Three auth calls from `from` (a loopback address) with optional extra headers. */
async function challenges(
  url: string,
  from: string,
  headers: Record<string, string> = {},
  n = 3,
): Promise<number[]> {
  const client = Deno.createHttpClient({ localAddress: from });
  try {
    const out = [];
    for (let i = 0; i < n; i++) {
      const r = await fetch(`${url}/v1/auth/challenge`, { method: "POST", headers, client });
      await r.body?.cancel();
      out.push(r.status);
    }
    return out;
  } finally {
    client.close();
  }
}

Deno.test({
  name: "behind haproxy each client has its own auth limit and forged X-Forwarded-For is ignored",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const relay = await startTestRelay({
      env: { SEALPOST_TRUSTED_PROXIES: "127.0.0.1/32", SEALPOST_RATE_AUTH: "2/min" },
    });
    const proxy = await startHaproxy(new URL(relay.url));
    try {
      assert.deepEqual(await challenges(proxy.url, "127.0.0.2"), [200, 200, 429]);
      assert.deepEqual(
        await challenges(proxy.url, "127.0.0.3"),
        [200, 200, 429],
        "another client behind the same proxy is not locked out",
      );
      assert.deepEqual(
        await challenges(proxy.url, "127.0.0.2", { "x-forwarded-for": "127.0.0.9" }, 1),
        [429],
        "a forged X-Forwarded-For is left of the proxy's own entry and not believed",
      );
      // Straight to the relay from an untrusted address: the header is not believed either.
      assert.deepEqual(
        await challenges(relay.url, "127.0.0.4", { "x-forwarded-for": "127.0.0.2" }),
        [200, 200, 429],
      );
    } finally {
      await proxy.stop();
      await relay.stop();
    }
  },
});

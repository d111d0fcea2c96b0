/**
 * Tests of the HTTP surface of relay/api/: the unauthenticated `/v1/info`, `/healthz` and
 * `/readyz`, the JSON error body for unknown routes, `400 invalid_request` (never a 500) for
 * malformed requests, and the per-IP auth rate limit. Runs on PGlite and on real Postgres.
 */

import assert from "node:assert/strict";
import { createDeviceIdentity } from "../../../client/mod.ts";
import { VERSION } from "../../../relay/base/version.ts";
import { testBothDatabases } from "../../helpers/relay.ts";
import {
  assertErrorBody,
  call,
  loginBody,
  nonce,
  registerBody,
  registered,
  relaySuite,
  withRelay,
} from "../../helpers/http.ts";

relaySuite("HTTP surface", {
  env: {
    SEALPOST_MAX_MESSAGE_BYTES: "32KiB",
    SEALPOST_RATE_SEND: "50/s",
    SEALPOST_MAX_TTL: "forever",
  },
}, {
  "GET /v1/info reports name, version, registration mode and limits": async (t) => {
    const { status, body } = await call(t.url, "GET", "/v1/info");
    assert.equal(status, 200);
    assert.equal(body.name, "sealpost");
    assert.equal(body.version, VERSION);
    assert.equal(body.registration, "open");
    assert.equal(body.limits.max_message_bytes, 32 * 1024);
    assert.equal(body.limits.max_blob_bytes, 100 * 1024 * 1024);
    assert.equal(body.limits.max_group_members, 1000);
    assert.equal(body.limits.max_groups_per_account, 10_000);
    assert.equal(body.limits.max_connections_per_device, 5);
    assert.equal(body.limits.max_ttl_s, null, "SEALPOST_MAX_TTL=forever");
    assert.equal(body.limits.default_retention_s, 30 * 86_400);
    assert.deepEqual(body.limits.rate_send, { count: 50, per_s: 1 });
    assert.equal(body.limits.rate_send_burst, 20);
    assert.deepEqual(body.limits.rate_poll, { count: 200, per_s: 60 });
    assert.equal(body.limits.rate_auth, null, "the test relay turns the auth limit off");
    assert.deepEqual(body.limits.rate_claim, { count: 60, per_s: 60 });
    assert.ok(body.features.includes("invitations"), "v1 additions are announced");
    assert.ok(body.features.includes("sealed_sends"));
    assert.deepEqual(body.privacy, { presence: true, last_seen_granularity_s: 3600 });
    assert.deepEqual(body.limits.claim_per_target, { count: 30, per_s: 3600 });
    assert.equal(body.limits.max_body_bytes, 8 * 32 * 1024, "8 × max_message_bytes");
    assert.ok(body.features.includes("bounded_bodies"));
    assert.ok(body.features.includes("claim_per_target"));
    assert.equal(typeof body.push, "object");
    for (const kind of ["apns", "fcm", "unifiedpush"]) {
      assert.equal(typeof body.push[kind], "boolean", `push.${kind}`);
    }
  },

  "an unknown route answers 404 not_found with the JSON error body": async (t) => {
    const { api } = await registered(t);
    const cases: [string, string][] = [
      ["GET", "/"],
      ["GET", "/nope"],
      ["GET", "/v1"],
      ["GET", "/v1/nope"],
      ["POST", "/v1/info"],
      ["GET", "/v1/auth/challenge"],
      ["GET", "/v1/auth/register"],
      ["POST", "/v1/auth/nope"],
      ["PATCH", "/v1/devices/abc"],
      ["GET", "/v1/accounts"],
    ];
    for (const [method, path] of cases) {
      for (const token of [undefined, api.token!]) {
        const response = await call(t.url, method, path, { token });
        assertErrorBody(response, 404, "not_found");
        assert.match(response.headers.get("content-type") ?? "", /application\/json/);
      }
    }
  },

  "register() and login() answer 400 invalid_request for malformed JSON, missing fields or wrong key lengths":
    async (t) => {
      const me = await createDeviceIdentity();
      const good = await registerBody(me, await nonce(t.url));
      const without = (field: string) => {
        const copy = { ...good };
        delete copy[field];
        return copy;
      };
      const bodies: [string, unknown][] = [
        ["empty body", ""],
        ["not JSON", "not json"],
        ["truncated JSON", '{"account":'],
        ["JSON array", "[]"],
        ["JSON null", "null"],
        ["JSON number", "42"],
        ["JSON string", '"hello"'],
        ["empty object", {}],
        ...["account", "device", "cert", "nonce", "sig"].map((
          f,
        ) => [`missing ${f}`, without(f)] as [string, unknown]),
        ["short account", { ...good, account: me.account.slice(1) }],
        ["long account", { ...good, account: me.account + "A" }],
        ["account not base64url", { ...good, account: "+".repeat(43) }],
        ["account as number", { ...good, account: 42 }],
        ["short device", { ...good, device: me.device.id.slice(0, 42) }],
        ["device of 44 chars", { ...good, device: "A".repeat(44) }],
        ["short cert", { ...good, cert: String(good.cert).slice(1) }],
        ["long sig", { ...good, sig: good.sig + "AA" }],
        ["sig with padding", { ...good, sig: String(good.sig).slice(0, 84) + "==" }],
        ["nonce as object", { ...good, nonce: { a: 1 } }],
        ["empty nonce", { ...good, nonce: "" }],
        ["huge nonce", { ...good, nonce: "A".repeat(10_000) }],
        ["name too long", { ...good, name: "x".repeat(101) }],
        ["platform as array", { ...good, platform: ["x"] }],
        ["empty invite", { ...good, invite: "" }],
        ["NUL in name", { ...good, name: "lap\u0000top" }],
      ];
      for (const [what, body] of bodies) {
        const response = await call(t.url, "POST", "/v1/auth/register", { body });
        assert.equal(response.status, 400, `${what}: ${JSON.stringify(response.body)}`);
        assertErrorBody(response, 400, "invalid_request");
      }
      const missing = await call(t.url, "POST", "/v1/auth/register", { body: without("cert") });
      assert.match(missing.body.error.message, /cert/, "the message names the field");

      const login = await loginBody(me, await nonce(t.url));
      const loginBodies: unknown[] = [
        "{",
        {},
        { ...login, device: undefined },
        { ...login, device: "short" },
        { ...login, sig: "AAAA" },
        { ...login, nonce: 7 },
      ];
      for (const body of loginBodies) {
        const response = await call(t.url, "POST", "/v1/auth/login", { body });
        assertErrorBody(response, 400, "invalid_request");
      }

      // Unknown fields are ignored: the untouched body still registers.
      const extra = await call(t.url, "POST", "/v1/auth/register", {
        body: { ...good, color: "blue" },
      });
      assert.equal(extra.status, 201);
    },

  "no malformed auth request makes the relay answer 500": async (t) => {
    const me = await createDeviceIdentity();
    const good = await registerBody(me, await nonce(t.url));
    const values: unknown[] = [
      null,
      true,
      0,
      -1,
      1e308,
      "",
      "A",
      "A".repeat(43),
      "_".repeat(43),
      "A".repeat(86),
      "A".repeat(85) + "B",
      "\u0000",
      "💥".repeat(43),
      "\ud800",
      [],
      {},
    ];
    let requests = 0;
    for (const path of ["/v1/auth/register", "/v1/auth/login"]) {
      for (const field of [...Object.keys(good), "name", "platform", "invite"]) {
        for (const value of values) {
          // A fresh device and nonce each time, so a request that passes validation reaches
          // the database as a new registration.
          const fresh = await createDeviceIdentity();
          const body = { ...(await registerBody(fresh, await nonce(t.url))), [field]: value };
          const response = await call(t.url, "POST", path, { body });
          requests++;
          assert.ok(
            response.status < 500,
            `${path} ${field}=${JSON.stringify(value)}: ${response.status} ${
              JSON.stringify(response.body)
            }`,
          );
          if (response.status >= 400) assert.equal(typeof response.body?.error?.code, "string");
        }
      }
    }
    assert.ok(requests > 100);
    assert.ok(!t.logs.some((line) => line.includes('"level":"error"')), "no error was logged");
  },

  "a body cut off mid-chunk answers 400, not 500, on every kind of route": async (t) => {
    const token = (await registered(t)).api.token!;
    const port = Number(new URL(t.url).port);
    const logged = t.logs.length;
    for (const path of ["/v1/ack", "/v1/auth/login", "/admin/login"]) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(new TextEncoder().encode(
          `POST ${path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\n` +
            `transfer-encoding: chunked\r\n\r\nffff\r\n{"cursors":{`,
        ));
        await conn.closeWrite();
        const buf = new Uint8Array(4096);
        const n = await conn.read(buf);
        const head = new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n", 1)[0];
        assert.equal(head, "HTTP/1.1 400 Bad Request", path);
      } finally {
        conn.close();
      }
    }
    const unhandled = t.logs.slice(logged).filter((line) => line.includes('"unhandled error"'));
    assert.deepEqual(unhandled, []);
  },
  "logs carry no tokens, signatures or invite codes": async (t) => {
    const { me, api } = await registered(t, { invite: "an-invite-that-is-ignored" });
    await api.devices(me.account);
    await call(t.url, "GET", `/v1/accounts/${me.account}/devices`, { token: "bad-token-x" });
    const text = t.logs.join("\n");
    assert.ok(t.logs.length > 0);
    assert.ok(!text.includes(api.token!), "no token");
    assert.ok(!text.includes("bad-token-x"), "no rejected token");
    assert.ok(!text.includes(me.cert), "no certificate");
    assert.ok(!text.includes("an-invite-that-is-ignored"), "no invite code");
  },

  "logs carry no device or account ids and no client addresses by default": async (t) => {
    const { me, api } = await registered(t);
    await api.devices(me.account);
    await api.revokeDevice(me.device.id);
    const text = t.logs.join("\n");
    assert.ok(text.includes("/v1/accounts/:id/devices"), "request paths keep their route");
    assert.ok(!text.includes(me.device.id), "no device id");
    assert.ok(!text.includes(me.account), "no account id");
    assert.ok(!text.includes('127.0.0.1"'), "no client address");
  },

  // Last: the relay stays drained.
  "/healthz and /readyz answer 200, and /readyz 503 once the relay drains": async (t) => {
    assert.equal((await call(t.url, "GET", "/healthz")).status, 200);
    const ready = await call(t.url, "GET", "/readyz");
    assert.equal(ready.status, 200);
    assert.equal(await t.relay.ready(), true);

    t.relay.drain();
    assert.equal((await call(t.url, "GET", "/readyz")).status, 503);
    assert.equal((await call(t.url, "GET", "/healthz")).status, 200, "still alive");
    assert.equal(await t.relay.ready(), false);
  },
});

testBothDatabases(
  "auth calls beyond SEALPOST_RATE_AUTH answer 429 rate_limited with Retry-After",
  (db) =>
    withRelay(db, { env: { SEALPOST_RATE_AUTH: "3/min" } }, async (t) => {
      for (let i = 0; i < 3; i++) {
        assert.equal((await call(t.url, "POST", "/v1/auth/challenge")).status, 200);
      }
      const limited = await call(t.url, "POST", "/v1/auth/challenge");
      assertErrorBody(limited, 429, "rate_limited");
      assert.equal(limited.body.error.retry_after_ms, 20_000);
      assert.equal(limited.headers.get("retry-after"), "20");

      // Register and login count against the same limit.
      const me = await createDeviceIdentity();
      const body = await registerBody(me, "AAAA");
      assertErrorBody(
        await call(t.url, "POST", "/v1/auth/register", { body }),
        429,
        "rate_limited",
      );
      assertErrorBody(await call(t.url, "POST", "/v1/auth/login", { body }), 429, "rate_limited");
      // Calls outside /v1/auth do not.
      assert.equal((await call(t.url, "GET", "/v1/info")).status, 200);

      t.clock.advance(5_500);
      const sooner = await call(t.url, "POST", "/v1/auth/challenge");
      assert.equal(sooner.body.error.retry_after_ms, 14_500);
      assert.equal(sooner.headers.get("retry-after"), "15", "whole seconds, rounded up");

      t.clock.advance(14_500);
      assert.equal((await call(t.url, "POST", "/v1/auth/challenge")).status, 200);
      assert.equal((await call(t.url, "POST", "/v1/auth/challenge")).status, 429);
    }),
);

Deno.test({
  name: "the API answers CORS preflights for any origin, and admin pages do not",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { startTestRelay } = await import("../../helpers/relay.ts");
    const t = await startTestRelay({ db: "pglite" });
    try {
      const pre = await fetch(`${t.url}/v1/groups`, {
        method: "OPTIONS",
        headers: {
          origin: "https://app.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type",
        },
      });
      await pre.body?.cancel();
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get("access-control-allow-origin"), "*");
      assert.match(pre.headers.get("access-control-allow-headers") ?? "", /authorization/);
      const info = await fetch(`${t.url}/v1/info`, { headers: { origin: "https://app.example" } });
      await info.body?.cancel();
      assert.equal(info.headers.get("access-control-allow-origin"), "*");
      const admin = await fetch(`${t.url}/admin/login`, {
        headers: { origin: "https://app.example" },
      });
      await admin.body?.cancel();
      assert.equal(admin.headers.get("access-control-allow-origin"), null);
    } finally {
      await t.stop();
    }
  },
});

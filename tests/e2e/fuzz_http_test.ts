/**
 * @module
 * A seeded, structure-aware fuzzer of the HTTP API against a real relay (PGlite and Postgres):
 * requests built from the PROTOCOL.md shapes of every route, then mutated — wrong types, huge,
 * negative and fractional numbers, deep and wide JSON, bad base64url, unicode edge cases,
 * overlong strings, oversized, truncated and non-UTF-8 bodies, wrong content types, bad path and
 * query parameters, hostile tokens, and raw HTTP with lying lengths. Every answer must be below
 * 500 and, outside the admin's HTML pages, a documented error shape; the relay must still serve a
 * valid request afterwards. The seed is printed; replay a failure with `SEALPOST_FUZZ_SEED=…`.
 */

import assert from "node:assert/strict";
import { createDeviceIdentity, newSendCapability, setSendCapability } from "../../client/mod.ts";
import { newAccount, newDevice, type TestDevice } from "../helpers/accounts.ts";
import {
  BAD_BASE64URL,
  damageText,
  describeCase,
  errorShapeProblem,
  fuzzSeed,
  invalidUtf8,
  mutate,
  NASTY_STRINGS,
  Rng,
  toJson,
} from "../helpers/fuzz.ts";
import { withRelay } from "../helpers/http.ts";
import { testBothDatabases } from "../helpers/relay.ts";

/** Requests per database; at least the 10,000 the issue asks for. */
const REQUESTS = 10_000;
/** Requests in flight at once. */
const WORKERS = 8;
/** Every this many requests, a worker proves the relay still serves a valid one. */
const LIVENESS_EVERY = 250;

type World = {
  me: TestDevice;
  myOther: TestDevice;
  peer: TestDevice;
  keeper: TestDevice;
  /** Owned by `me`, `peer` a member. */
  mine: string;
  /** Owned by `peer`, `me` a member. */
  theirs: string;
  /** `peer`'s alone: `me` is not a member. */
  foreign: string;
  /** `keeper`'s, for the liveness probe; nothing the fuzzer sends can touch it. */
  probe: string;
  blob: { id: string; exp: string; sig: string };
  /** The send capability of `mine`, for sealed sends. */
  cap: string;
  registerShape: Record<string, unknown>;
};

type Case = {
  method: string;
  path: string;
  body?: unknown;
  /** Raw bytes instead of a JSON body (blob data). */
  bytes?: Uint8Array<ArrayBuffer>;
};

/** The API's routes as PROTOCOL.md shapes them, with valid bodies to mutate. */
function templates(w: World, rng: Rng): (() => Case)[] {
  const group = () => rng.pick([w.mine, w.mine, w.theirs, w.foreign]);
  const account = () => rng.pick([w.me.account, w.peer.account, w.keeper.account]);
  const b64 = () => rng.pick(["AAAA", "", "_-_-", "A".repeat(rng.int(200))]);
  return [
    () => ({ method: "POST", path: "/v1/auth/challenge", body: {} }),
    () => ({ method: "POST", path: "/v1/auth/register", body: w.registerShape }),
    () => ({
      method: "POST",
      path: "/v1/auth/login",
      body: { device: w.me.device, nonce: "A".repeat(43), sig: "A".repeat(86) },
    }),
    () => ({
      method: "POST",
      path: "/v1/groups",
      body: { members: [w.peer.account], retention_s: 3600 },
    }),
    () => ({ method: "GET", path: "/v1/groups" }),
    () => ({ method: "GET", path: `/v1/groups/${group()}` }),
    () => ({
      method: "PUT",
      path: `/v1/groups/${group()}/members/${account()}`,
      body: { role: rng.pick(["member", "admin", "owner"]) },
    }),
    () => ({ method: "DELETE", path: `/v1/groups/${group()}/members/${w.keeper.account}` }),
    () => ({ method: "POST", path: `/v1/groups/${group()}/accept` }),
    () => ({
      method: rng.pick(["PUT", "DELETE"]),
      path: `/v1/groups/${group()}/send_capability`,
      body: { verifier: "A".repeat(43) },
    }),
    () => ({
      method: "POST",
      path: `/v1/sealed/groups/${group()}/messages`,
      body: { cap: w.cap, body: b64(), client_id: `s${rng.int(1e9)}`, ttl_s: 60 },
    }),
    () => ({ method: "GET", path: "/v1/sealed/ws" }),
    // Never `mine`: deleting it would leave the rest of the run with nothing to reach.
    () => ({ method: "DELETE", path: `/v1/groups/${rng.pick([w.theirs, w.foreign])}` }),
    () => ({ method: "GET", path: `/v1/accounts/${account()}/devices` }),
    // Never the fuzzer's own device: revoking it would end the run's reach.
    () => ({ method: "DELETE", path: `/v1/devices/${rng.pick([w.peer.device, "me"])}` }),
    () => ({
      method: "PUT",
      path: "/v1/devices/me/push",
      body: rng.pick([
        { kind: "webpush", endpoint: "https://192.0.2.1/p", keys: { p256dh: b64(), auth: b64() } },
        { kind: "unifiedpush", endpoint: "http://127.0.0.1:1/up" },
        { kind: "apns", token: "ab".repeat(32), topic: "app.example" },
        { kind: "fcm", token: "token" },
      ]),
    }),
    () => ({ method: "DELETE", path: "/v1/devices/me/push" }),
    () => ({
      method: "PUT",
      path: "/v1/devices/me/keys",
      body: { kind: "mls", packages: [b64(), b64()], last_resort: "AAAA" },
    }),
    () => ({ method: "GET", path: "/v1/devices/me/keys" }),
    () => ({
      method: "POST",
      path: `/v1/accounts/${account()}/keys/claim`,
      body: { kind: rng.pick(["mls", "signal.prekey", "none"]) },
    }),
    () => ({
      method: "POST",
      path: `/v1/groups/${group()}/messages`,
      body: {
        client_id: `c${rng.int(1e9)}`,
        body: b64(),
        ttl_s: 3600,
        ...(rng.chance(0.3) ? { to: [w.peer.device] } : {}),
        ...(rng.chance(0.2) ? { ephemeral: true } : {}),
        ...(rng.chance(0.1) ? { blob: w.blob.id } : {}),
      },
    }),
    () => ({
      method: "GET",
      path: `/v1/groups/${group()}/messages?${query(rng, { after: "0", limit: "10" })}`,
    }),
    // `wait` stays 0 or invalid: a valid long poll would only make the run slow.
    () => ({ method: "GET", path: `/v1/inbox?${query(rng, { wait: "0", limit: "10" })}` }),
    () => ({ method: "POST", path: "/v1/ack", body: { cursors: { [group()]: rng.int(5) } } }),
    () => ({
      method: "POST",
      path: "/v1/blobs",
      body: { group: group(), size: 10, sha256: "A".repeat(43) },
    }),
    () => ({ method: "GET", path: `/v1/blobs/${w.blob.id}` }),
    () => ({
      method: "PUT",
      path: `/v1/blobs/${w.blob.id}/data?${query(rng, { exp: w.blob.exp, sig: w.blob.sig })}`,
      bytes: crypto.getRandomValues(new Uint8Array(rng.int(64))),
    }),
    () => ({
      method: "GET",
      path: `/v1/blobs/${w.blob.id}/data?${query(rng, { exp: w.blob.exp, sig: w.blob.sig })}`,
    }),
    () => ({ method: "GET", path: rng.pick(["/v1/info", "/healthz", "/readyz", "/metrics"]) }),
    () => ({ method: "GET", path: "/v1/ws" }),
    () => ({ method: "POST", path: "/admin/login", body: "password=x&_csrf=y" }),
    () => ({ method: "GET", path: rng.pick(["/admin", "/admin/devices", "/join?code=x"]) }),
    () => ({
      method: rng.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
      path: rng.pick(["/", "/v1", "/v1/", "/v2/groups", "/v1/groups/", "//v1//groups"]),
    }),
  ];
}

/** A query string from valid parameters, sometimes mutated, dropped or repeated. */
function query(rng: Rng, params: Record<string, string>): string {
  const out = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (rng.chance(0.1)) continue;
    const v = rng.chance(0.3)
      ? rng.pick(["-1", "1.5", "1e3", "0x10", "", "NaN", "99999999999999999999", "١٢", "1 "])
      : value;
    out.append(key, v);
    if (rng.chance(0.05)) out.append(key, "7");
  }
  let text = out.toString();
  if (rng.chance(0.05)) text += rng.pick(["&%00=1", "&a=%ff", "&=&&", "&limit=%ED%A0%80"]);
  return text;
}

/** Replaces one path segment after `/v1/x/` with a hostile one (percent-encoded by hand). */
function mutatePath(rng: Rng, path: string): string {
  const [pathname, search] = path.split("?", 2);
  const segments = pathname.split("/");
  if (segments.length < 4) return path;
  const i = 3 + rng.int(segments.length - 3);
  segments[i] = rng.pick([
    "%00",
    "a%00b",
    "%ff%fe",
    "%ED%A0%80",
    "%E2%80%AE",
    "..",
    "%2e%2e",
    "%2F",
    "x".repeat(rng.pick([100, 5_000])),
    "%",
    "%zz",
    "me",
    encodeURIComponent(rng.pick(BAD_BASE64URL)),
    encodeURIComponent(rng.pick(NASTY_STRINGS).replace(/[\ud800-\udfff]/g, "")),
  ]);
  return segments.join("/") + (search === undefined ? "" : `?${search}`);
}

/** Builds one hostile request: a template, then mutations at every level. */
function buildRequest(
  rng: Rng,
  w: World,
  all: (() => Case)[],
): { method: string; path: string; headers: Record<string, string>; body?: BodyInit } {
  const template = rng.pick(all)();
  const path = rng.chance(0.1) ? mutatePath(rng, template.path) : template.path;
  const headers: Record<string, string> = {};
  const token = rng.next();
  if (token < 0.85) headers.authorization = `Bearer ${w.me.token}`;
  else if (token < 0.9) headers.authorization = `Bearer ${w.peer.token}`;
  else if (token < 0.95) {
    headers.authorization = rng.pick([
      "Bearer",
      "Bearer ",
      `Bearer ${w.me.token}x`,
      `bearer ${"A".repeat(5000)}`,
      `Basic ${btoa("a:b")}`,
      `Bearer ${w.me.token} ${w.me.token}`,
    ]);
  }
  let body: BodyInit | undefined;
  if (template.bytes) body = template.bytes;
  else if (template.body !== undefined || rng.chance(0.05)) {
    const shape = template.body ?? {};
    if (typeof shape === "string") body = shape;
    else {
      const value = rng.chance(0.7) ? mutate(rng, shape) : shape;
      let text = toJson(value);
      if (rng.chance(0.15)) text = damageText(rng, text);
      body = text;
      if (rng.chance(0.02)) body = invalidUtf8(rng, text.slice(0, 20));
      if (rng.chance(0.005)) {
        // Oversized: a valid-looking send with megabytes of body.
        body = toJson({ client_id: "big", body: "A".repeat(rng.pick([300_000, 2_000_000])) });
      }
    }
    headers["content-type"] = rng.chance(0.8) ? "application/json" : rng.pick([
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/json; charset=utf-16",
      "application/octet-stream",
      "",
    ]);
  }
  return { method: template.method, path, headers, body };
}

/** Raw HTTP/1.1 that fetch would refuse to send: lying lengths, bad chunks, odd headers. */
function rawRequest(rng: Rng, w: World): string {
  const target = rng.pick([
    "/v1/groups",
    "/v1/ack",
    `/v1/groups/${w.mine}/messages`,
    "/v1/auth/login",
    `/v1/blobs/${w.blob.id}/data?exp=${w.blob.exp}&sig=${w.blob.sig}`,
  ]);
  const auth = `authorization: Bearer ${w.me.token}\r\n`;
  const body = '{"cursors":{';
  switch (rng.int(6)) {
    case 0: // Content-Length promises more than is sent, then the client stops writing.
      return `POST ${target} HTTP/1.1\r\nhost: x\r\n${auth}content-type: application/json\r\n` +
        `content-length: ${body.length + 1000}\r\n\r\n${body}`;
    case 1: // A chunk that never completes.
      return `POST ${target} HTTP/1.1\r\nhost: x\r\n${auth}transfer-encoding: chunked\r\n\r\n` +
        `ffff\r\n${body}`;
    case 2: // A chunk size that is not hex.
      return `PUT ${target} HTTP/1.1\r\nhost: x\r\n${auth}transfer-encoding: chunked\r\n\r\n` +
        `zz\r\n{}\r\n0\r\n\r\n`;
    case 3: // Both framings.
      return `POST ${target} HTTP/1.1\r\nhost: x\r\n${auth}content-length: 2\r\n` +
        `transfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`;
    case 4: // A header of 64 KiB.
      return `GET /v1/groups HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(65_536)}\r\n\r\n`;
    default: // Control bytes in a header value and a bogus request line.
      return rng.pick([
        `GET /v1/groups HTTP/1.1\r\nhost: x\r\nauthorization: Bearer \x01\x7f\r\n\r\n`,
        `GET http://evil/v1/info HTTP/1.1\r\nhost: x\r\n\r\n`,
        `BREW /v1/info HTTP/1.1\r\nhost: x\r\n\r\n`,
        `GET /v1/info HTTP/9.9\r\n\r\n`,
        `\0\0\0\r\n\r\n`,
      ]);
  }
}

/** Sends raw bytes and returns the answer's status (null when the relay only closed). */
async function sendRaw(port: number, text: string): Promise<number | null> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), 5_000);
  try {
    await conn.write(new TextEncoder().encode(text));
    await conn.closeWrite().catch(() => {});
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf).catch(() => null);
    if (!n) return null;
    const line = new TextDecoder().decode(buf.subarray(0, n)).split("\r\n", 1)[0];
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(line);
    return match ? Number(match[1]) : null;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

/** A valid send and read-back by a device the fuzzer never used: the relay still works. */
async function assertAlive(url: string, w: World, label: string): Promise<void> {
  const sent = await w.keeper.api.send(w.probe, {
    body: "cHJvYmU",
    client_id: crypto.randomUUID(),
  });
  assert.equal(sent.status, 201, `${label}: a valid send answers 201`);
  const page = await w.keeper.api.messages(w.probe, sent.seq! - 1, 1);
  assert.equal(page.messages[0]?.seq, sent.seq, `${label}: the message reads back`);
  const ready = await fetch(`${url}/readyz`);
  await ready.body?.cancel();
  assert.equal(ready.status, 200, `${label}: /readyz answers 200`);
}

async function buildWorld(url: string): Promise<World> {
  const [me, myOther] = await newAccount(url, 2);
  const peer = await newDevice(url, "peer");
  const keeper = await newDevice(url, "keeper");
  const mine = (await me.api.createGroup({ members: [peer.account] })).id;
  const theirs = (await peer.api.createGroup({ members: [me.account] })).id;
  const foreign = (await peer.api.createGroup()).id;
  const probe = (await keeper.api.createGroup()).id;
  const bytes = new Uint8Array(10);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const sha256 = btoa(String.fromCharCode(...digest)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
  const created = await me.api.createBlob(mine, bytes.length, sha256);
  const uploadUrl = new URL(created.upload.url);
  await me.api.uploadBlob(created.upload, bytes);
  await me.api.uploadKeyPackages("mls", ["AAAA", "BBBB"], "CCCC");
  await peer.api.uploadKeyPackages("mls", ["DDDD"], "EEEE");
  for (let i = 0; i < 3; i++) await me.api.send(mine, { body: "AAAA" });
  const stranger = await createDeviceIdentity();
  const cap = newSendCapability();
  await setSendCapability(me.api, mine, cap);
  return {
    me,
    myOther,
    peer,
    keeper,
    mine,
    theirs,
    foreign,
    probe,
    blob: {
      id: created.id,
      exp: uploadUrl.searchParams.get("exp") ?? "",
      sig: uploadUrl.searchParams.get("sig") ?? "",
    },
    cap,
    registerShape: {
      account: stranger.account,
      device: stranger.device.id,
      cert: stranger.cert,
      nonce: "A".repeat(43),
      sig: "A".repeat(86),
      name: "fuzz",
      platform: "deno",
    },
  };
}

testBothDatabases(
  "fuzz: 10,000 hostile HTTP requests answer < 500 in the documented shape; the relay stays usable",
  (db) =>
    withRelay(db, {
      logLevel: "warn",
      env: { SEALPOST_RATE_SEND: "off", SEALPOST_RATE_POLL: "off", SEALPOST_RATE_CLAIM: "off" },
    }, async (t) => {
      const seed = fuzzSeed(`fuzz_http [${db}]`);
      const rng = new Rng(seed);
      const w = await buildWorld(t.url);
      const port = Number(new URL(t.url).port);
      const statuses = new Map<number, number>();
      const problems: string[] = [];
      let done = 0;
      const started = performance.now();

      const worker = async (id: number, wrng: Rng, count: number) => {
        const all = templates(w, wrng);
        for (let i = 0; i < count && problems.length < 20; i++) {
          if (wrng.chance(0.03)) {
            const text = rawRequest(wrng, w);
            const status = await sendRaw(port, text);
            if (status !== null && status >= 500) {
              problems.push(`raw ${describeCase(text, 200)} → ${status}`);
            }
          } else {
            const req = buildRequest(wrng, w, all);
            let response: Response;
            try {
              response = await fetch(`${t.url}${req.path}`, {
                method: req.method,
                headers: req.headers,
                body: req.method === "GET" || req.method === "HEAD" ? undefined : req.body,
                redirect: "manual",
                signal: AbortSignal.timeout(30_000),
              });
            } catch (error) {
              problems.push(`${req.method} ${req.path}: no answer (${error})`);
              continue;
            }
            const text = await response.text();
            statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
            const where = `${req.method} ${describeCase(req.path, 120)} body ${
              describeCase(typeof req.body === "string" ? req.body : "<bytes>")
            }`;
            if (req.path.startsWith("/admin") || req.path.startsWith("/join")) {
              if (response.status >= 500) problems.push(`${where} → ${response.status}`);
            } else if (response.status >= 400 && req.method !== "HEAD") {
              let body: unknown = null;
              try {
                body = JSON.parse(text);
              } catch { /* reported below */ }
              const problem = errorShapeProblem(response.status, body);
              if (problem) problems.push(`${where} → ${problem}: ${describeCase(text, 200)}`);
            }
          }
          done++;
          if (id === 0 && i > 0 && i % Math.floor(LIVENESS_EVERY / WORKERS) === 0) {
            await assertAlive(t.url, w, `after ${done} requests`);
          }
        }
      };
      const perWorker = Math.ceil(REQUESTS / WORKERS);
      await Promise.all(
        Array.from({ length: WORKERS }, (_, id) => worker(id, rng.fork(), perWorker)),
      );
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `fuzz_http [${db}]: ${done} requests in ${seconds.toFixed(1)} s; statuses ${
          JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))
        }`,
      );
      assert.deepEqual(problems, [], `seed ${seed}: answers broke the contract`);
      assert.ok(done >= REQUESTS, `only ${done} requests ran`);
      // Mutations must not drown everything in validation errors: some requests got through.
      assert.ok((statuses.get(201) ?? 0) > 0 && (statuses.get(200) ?? 0) > 0, "some succeeded");
      await assertAlive(t.url, w, "at the end");
      const unhandled = t.logs.filter((line) => line.includes('"unhandled error"'));
      assert.deepEqual(
        unhandled.slice(0, 3),
        [],
        `seed ${seed}: the relay logged unhandled errors`,
      );
    }),
);

/**
 * @module
 * The authorization matrix: every HTTP route the running relay serves (enumerated from Hono's
 * route table, so a new route without a row fails here) and every WebSocket frame type (from the
 * `ClientFrame` and `AuthFrame` schemas) × eight callers — no token, an expired token, a revoked
 * device, another account, a non-member (an account sharing a different group with the owner),
 * a member, a group admin and the group's owner — each cell asserting the answer PROTOCOL.md and
 * docs/protocol.md give: `401 unauthenticated`, `403 device_revoked`, `404 not_found` for
 * non-members (no existence oracle), `403 forbidden` for a role too low, the success status
 * otherwise; public and signed-URL routes answer the same whoever calls; the dashboard grants a
 * bearer token nothing. Cells that change state get fresh fixtures, so every cell is independent.
 */

import assert from "node:assert/strict";
import {
  createDeviceIdentity,
  type DeviceIdentity,
  generateKeyPair,
  HttpClient,
  type KeyPair,
  newSendCapability,
  setSendCapability,
} from "../../client/mod.ts";
import { AuthFrame, ClientFrame } from "../../relay/protocol.ts";
import { call, nonce, registerBody, withRelay } from "../helpers/http.ts";
import { testBothDatabases } from "../helpers/relay.ts";

/** The callers of every cell, from least to most privileged. */
const WHO = [
  "none",
  "expired",
  "revoked",
  "other",
  "nonMember",
  "member",
  "admin",
  "owner",
] as const;
type Who = (typeof WHO)[number];

/** A status, or a status and the error code of the JSON body. */
type Expect = number | readonly [number, string];

const UNAUTHENTICATED = [401, "unauthenticated"] as const;
const REVOKED = [403, "device_revoked"] as const;
const NOT_FOUND = [404, "not_found"] as const;
const FORBIDDEN = [403, "forbidden"] as const;
const INVALID = [400, "invalid_request"] as const;

/** A bearer route: the three auth failures, then other, non-member, member, admin, owner. */
function bearer(
  other: Expect,
  nonMember: Expect,
  member: Expect,
  admin: Expect,
  owner: Expect,
): Record<Who, Expect> {
  return {
    none: UNAUTHENTICATED,
    expired: UNAUTHENTICATED,
    revoked: REVOKED,
    other,
    nonMember,
    member,
    admin,
    owner,
  };
}

/** A route whose answer does not depend on the caller's token (public, signed URL, dashboard). */
function anyone(expect: Expect): Record<Who, Expect> {
  return Object.fromEntries(WHO.map((who) => [who, expect])) as Record<Who, Expect>;
}

const ENV = {
  SEALPOST_TOKEN_TTL: "1h",
  SEALPOST_METRICS_TOKEN: "metrics-secret-for-the-matrix",
  SEALPOST_ADMIN_PASSWORD: "matrix admin password",
  SEALPOST_RATE_SEND: "off",
  SEALPOST_RATE_POLL: "off",
  SEALPOST_RATE_CLAIM: "off",
};

type Principal = { identity: DeviceIdentity; api: HttpClient; token: string };

/** Everything the cells act on. */
class World {
  principals = new Map<Who, Principal>();
  ownerRoot!: KeyPair;
  /** A group the owner shares with the non-member, so it may see the owner's devices. */
  shared!: string;
  /** An account no fixture group holds, to add with `PUT …/members/:account`. */
  outsider!: string;
  constructor(readonly url: string) {}

  p(who: Exclude<Who, "none">): Principal {
    return this.principals.get(who)!;
  }
  token(who: Who): string | undefined {
    return who === "none" ? undefined : this.p(who).token;
  }

  /**
   * A fresh group: owner, admin and member (both accepted their invitations), and a second
   * member, still invited, for removal cells.
   */
  async group(): Promise<{ id: string; second: string }> {
    const second = await registerAccount(this.url);
    const owner = this.p("owner").api;
    const group = await owner.createGroup({
      members: [this.p("admin").identity.account, this.p("member").identity.account, second],
    });
    await owner.putMember(group.id, this.p("admin").identity.account, "admin");
    for (const who of ["admin", "member"] as const) {
      const accepted = await call(this.url, "POST", `/v1/groups/${group.id}/accept`, {
        token: this.p(who).token,
      });
      assert.equal(accepted.status, 200, `the ${who} accepts the fixture group`);
    }
    return { id: group.id, second };
  }

  /** A blob of a fresh group, declared (and uploaded unless `declaredOnly`). */
  async blob(declaredOnly = false): Promise<{ id: string; uploadPath: string; bytes: Uint8Array }> {
    const { id: group } = await this.group();
    const bytes = new TextEncoder().encode("matrix blob");
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    const sha256 = btoa(String.fromCharCode(...digest)).replace(/\+/g, "-").replace(/\//g, "_")
      .replace(/=+$/, "");
    const owner = this.p("owner").api;
    const created = await owner.createBlob(group, bytes.length, sha256);
    if (!declaredOnly) await owner.uploadBlob(created.upload, bytes);
    const url = new URL(created.upload.url);
    return { id: created.id, uploadPath: `${url.pathname}${url.search}`, bytes };
  }
}

/** Registers a one-device account and returns its id. */
async function registerAccount(url: string): Promise<string> {
  const identity = await createDeviceIdentity();
  await new HttpClient(url).register(identity);
  return identity.account;
}

/** One cell's request. `token: false` sends no bearer token whoever the caller is. */
type Request = {
  path: string;
  body?: unknown;
  raw?: Uint8Array;
  headers?: Record<string, string>;
};

/** One route of the matrix. */
type Row = {
  build: (w: World, who: Who) => Promise<Request> | Request;
  expect: Record<Who, Expect>;
};

const G = (w: World) => w.group();

/** The matrix: one row per `METHOD /hono/path` the relay serves. */
const ROWS: Record<string, Row> = {
  // Unauthenticated by design.
  "GET /healthz": { build: () => ({ path: "/healthz" }), expect: anyone(200) },
  "GET /readyz": { build: () => ({ path: "/readyz" }), expect: anyone(200) },
  "GET /v1/info": { build: () => ({ path: "/v1/info" }), expect: anyone(200) },
  "GET /v1/openapi.json": { build: () => ({ path: "/v1/openapi.json" }), expect: anyone(200) },
  "GET /v1/asyncapi.json": { build: () => ({ path: "/v1/asyncapi.json" }), expect: anyone(200) },
  "POST /v1/auth/challenge": { build: () => ({ path: "/v1/auth/challenge" }), expect: anyone(200) },
  "POST /v1/auth/register": {
    build: async (w) => ({
      path: "/v1/auth/register",
      body: await registerBody(await createDeviceIdentity(), await nonce(w.url)),
    }),
    expect: anyone(201),
  },
  "POST /v1/auth/login": {
    build: async (w) => {
      const { identity } = w.p("owner");
      const n = await nonce(w.url);
      const sig = (await registerBody(identity, n)).sig;
      return { path: "/v1/auth/login", body: { device: identity.device.id, nonce: n, sig } };
    },
    expect: anyone(200),
  },
  // A device token is not the metrics token.
  "GET /metrics": { build: () => ({ path: "/metrics" }), expect: anyone(UNAUTHENTICATED) },
  // Authentication happens inside the socket; without an upgrade every caller gets 400.
  "GET /v1/ws": { build: () => ({ path: "/v1/ws" }), expect: anyone(INVALID) },

  // Groups.
  "POST /v1/groups": {
    build: () => ({ path: "/v1/groups", body: {} }),
    expect: bearer(201, 201, 201, 201, 201),
  },
  "GET /v1/groups": {
    build: () => ({ path: "/v1/groups" }),
    expect: bearer(200, 200, 200, 200, 200),
  },
  "GET /v1/groups/:id": {
    build: async (w) => ({ path: `/v1/groups/${(await G(w)).id}` }),
    expect: bearer(NOT_FOUND, NOT_FOUND, 200, 200, 200),
  },
  "PUT /v1/groups/:id/members/:account": {
    build: async (w) => ({ path: `/v1/groups/${(await G(w)).id}/members/${w.outsider}`, body: {} }),
    expect: bearer(NOT_FOUND, NOT_FOUND, FORBIDDEN, 200, 200),
  },
  "DELETE /v1/groups/:id/members/:account": {
    build: async (w) => {
      const g = await G(w);
      return { path: `/v1/groups/${g.id}/members/${g.second}` };
    },
    expect: bearer(NOT_FOUND, NOT_FOUND, FORBIDDEN, 204, 204),
  },
  "POST /v1/groups/:id/accept": {
    build: async (w) => ({ path: `/v1/groups/${(await G(w)).id}/accept` }),
    // Idempotent: members who already take part (the owner too) get 200.
    expect: bearer(NOT_FOUND, NOT_FOUND, 200, 200, 200),
  },
  "PUT /v1/groups/:id/send_capability": {
    build: async (w) => ({
      path: `/v1/groups/${(await G(w)).id}/send_capability`,
      body: { verifier: "A".repeat(43) },
    }),
    // Any member may set it (any member may send).
    expect: bearer(NOT_FOUND, NOT_FOUND, 204, 204, 204),
  },
  "DELETE /v1/groups/:id/send_capability": {
    build: async (w) => ({ path: `/v1/groups/${(await G(w)).id}/send_capability` }),
    expect: bearer(NOT_FOUND, NOT_FOUND, 204, 204, 204),
  },
  // The capability is the permission: whoever calls, with or without a token, the same answer.
  "POST /v1/sealed/groups/:id/messages": {
    build: async (w) => {
      const { id } = await G(w);
      const cap = newSendCapability();
      await setSendCapability(w.p("owner").api, id, cap);
      return { path: `/v1/sealed/groups/${id}/messages`, body: { cap, body: "AAAA" } };
    },
    expect: anyone(201),
  },
  "GET /v1/sealed/ws": { build: () => ({ path: "/v1/sealed/ws" }), expect: anyone(INVALID) },
  "DELETE /v1/groups/:id": {
    build: async (w) => ({ path: `/v1/groups/${(await G(w)).id}` }),
    expect: bearer(NOT_FOUND, NOT_FOUND, FORBIDDEN, FORBIDDEN, 204),
  },

  // Messages.
  "POST /v1/groups/:id/messages": {
    build: async (w) => ({
      path: `/v1/groups/${(await G(w)).id}/messages`,
      body: { body: "AAAA" },
    }),
    expect: bearer(NOT_FOUND, NOT_FOUND, 201, 201, 201),
  },
  "GET /v1/groups/:id/messages": {
    build: async (w) => ({ path: `/v1/groups/${(await G(w)).id}/messages` }),
    expect: bearer(NOT_FOUND, NOT_FOUND, 200, 200, 200),
  },
  "GET /v1/inbox": {
    build: () => ({ path: "/v1/inbox" }),
    expect: bearer(200, 200, 200, 200, 200),
  },
  "POST /v1/ack": {
    build: async (w) => ({ path: "/v1/ack", body: { cursors: { [(await G(w)).id]: 0 } } }),
    expect: bearer(NOT_FOUND, NOT_FOUND, 204, 204, 204),
  },

  // Device directory: the target is the owner's account and a fresh device of it.
  "GET /v1/accounts/:account/devices": {
    build: (w) => ({ path: `/v1/accounts/${w.p("owner").identity.account}/devices` }),
    // The non-member shares another group with the owner: the directory is visible to it.
    expect: bearer(NOT_FOUND, 200, 200, 200, 200),
  },
  "DELETE /v1/devices/:device": {
    build: async (w) => {
      const device = await createDeviceIdentity(w.ownerRoot);
      await new HttpClient(w.url).register(device);
      return { path: `/v1/devices/${device.device.id}` };
    },
    expect: bearer(NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, 204),
  },
  // Each caller's own push target; FCM is not configured here, which every caller is told.
  "PUT /v1/devices/me/push": {
    build: () => ({ path: "/v1/devices/me/push", body: { kind: "fcm", token: "t" } }),
    expect: bearer(INVALID, INVALID, INVALID, INVALID, INVALID),
  },
  "DELETE /v1/devices/me/push": {
    build: () => ({ path: "/v1/devices/me/push" }),
    expect: bearer(204, 204, 204, 204, 204),
  },

  // Key packages: each caller's own, and claims of the owner's.
  "PUT /v1/devices/me/keys": {
    build: () => ({ path: "/v1/devices/me/keys", body: { kind: "mls", packages: ["AAAA"] } }),
    expect: bearer(204, 204, 204, 204, 204),
  },
  "GET /v1/devices/me/keys": {
    build: () => ({ path: "/v1/devices/me/keys" }),
    expect: bearer(200, 200, 200, 200, 200),
  },
  "POST /v1/accounts/:account/keys/claim": {
    build: (w) => ({
      path: `/v1/accounts/${w.p("owner").identity.account}/keys/claim`,
      body: { kind: "mls" },
    }),
    // docs/protocol.md: any device may claim a known account's packages (rate limited).
    expect: bearer(200, 200, 200, 200, 200),
  },

  // Blobs: declare and fetch need membership; the data URLs carry their own signature.
  "POST /v1/blobs": {
    build: async (w) => ({
      path: "/v1/blobs",
      body: { group: (await G(w)).id, size: 1, sha256: "A".repeat(43) },
    }),
    expect: bearer(NOT_FOUND, NOT_FOUND, 201, 201, 201),
  },
  "GET /v1/blobs/:id": {
    build: async (w) => ({ path: `/v1/blobs/${(await w.blob()).id}` }),
    expect: bearer(NOT_FOUND, NOT_FOUND, 302, 302, 302),
  },
  "PUT /v1/blobs/:id/data": {
    build: async (w) => {
      const blob = await w.blob(true);
      return { path: blob.uploadPath, raw: blob.bytes };
    },
    expect: anyone(204),
  },
  "GET /v1/blobs/:id/data": {
    build: async (w) => {
      const blob = await w.blob();
      const answer = await fetch(`${w.url}/v1/blobs/${blob.id}`, {
        headers: { authorization: `Bearer ${w.p("owner").token}` },
        redirect: "manual",
      });
      await answer.body?.cancel();
      const location = new URL(answer.headers.get("location")!);
      return { path: `${location.pathname}${location.search}` };
    },
    expect: anyone(200),
  },

  // The dashboard has its own login: a bearer token changes nothing.
  "GET /admin/assets/:file": {
    build: () => ({ path: "/admin/assets/none.css" }),
    expect: anyone(404),
  },
  "GET /admin/login": { build: () => ({ path: "/admin/login" }), expect: anyone(200) },
  "POST /admin/login": { build: () => ({ path: "/admin/login", body: {} }), expect: anyone(403) },
  "POST /admin/logout": { build: () => ({ path: "/admin/logout", body: {} }), expect: anyone(401) },
  "GET /admin/setup": { build: () => ({ path: "/admin/setup" }), expect: anyone(404) },
  "POST /admin/setup": { build: () => ({ path: "/admin/setup", body: {} }), expect: anyone(403) },
  "GET /admin": { build: () => ({ path: "/admin" }), expect: anyone(303) },
  "GET /admin/partials/overview": {
    build: () => ({ path: "/admin/partials/overview" }),
    expect: anyone(303),
  },
  "GET /admin/devices": { build: () => ({ path: "/admin/devices" }), expect: anyone(303) },
  "GET /admin/devices/:id": { build: () => ({ path: "/admin/devices/x" }), expect: anyone(303) },
  "GET /admin/devices/:id/revoke": {
    build: () => ({ path: "/admin/devices/x/revoke" }),
    expect: anyone(303),
  },
  "POST /admin/devices/:id/revoke": {
    build: () => ({ path: "/admin/devices/x/revoke", body: {} }),
    expect: anyone(401),
  },
  "GET /admin/accounts/:id": { build: () => ({ path: "/admin/accounts/x" }), expect: anyone(303) },
  "GET /admin/groups": { build: () => ({ path: "/admin/groups" }), expect: anyone(303) },
  "GET /admin/groups/:id": { build: () => ({ path: "/admin/groups/x" }), expect: anyone(303) },
  "POST /admin/groups/:id/retention": {
    build: () => ({ path: "/admin/groups/x/retention", body: {} }),
    expect: anyone(401),
  },
  "GET /admin/groups/:id/delete": {
    build: () => ({ path: "/admin/groups/x/delete" }),
    expect: anyone(303),
  },
  "POST /admin/groups/:id/delete": {
    build: () => ({ path: "/admin/groups/x/delete", body: {} }),
    expect: anyone(401),
  },
  "GET /admin/invites": { build: () => ({ path: "/admin/invites" }), expect: anyone(303) },
  "POST /admin/invites": {
    build: () => ({ path: "/admin/invites", body: {} }),
    expect: anyone(401),
  },
  "POST /admin/invites/:id/revoke": {
    build: () => ({ path: "/admin/invites/x/revoke", body: {} }),
    expect: anyone(401),
  },
  "GET /admin/settings": { build: () => ({ path: "/admin/settings" }), expect: anyone(303) },
  "POST /admin/settings": {
    build: () => ({ path: "/admin/settings", body: {} }),
    expect: anyone(401),
  },
  "GET /admin/audit": { build: () => ({ path: "/admin/audit" }), expect: anyone(303) },
  "GET /join": { build: () => ({ path: "/join" }), expect: anyone(200) },
};

/**
 * WebSocket frames × callers. The first three columns never reach the frame: no `auth` first
 * closes 4001, an expired token 4001, a revoked device 4003. Authenticated callers get the
 * reply listed (`-` for none), read up to the `pong` of a following ping.
 */
const FRAME_ROWS: Record<string, { frame: (group: string) => unknown; expect: string[] }> = {
  auth: { frame: () => ({ t: "auth" }), expect: ["ready", "ready", "ready", "ready", "ready"] },
  sub: {
    frame: (group) => ({ t: "sub", ref: "m", groups: [group] }),
    expect: ["error:not_found", "error:not_found", "synced", "synced", "synced"],
  },
  unsub: {
    frame: (group) => ({ t: "unsub", ref: "m", groups: [group] }),
    expect: ["-", "-", "-", "-", "-"],
  },
  send: {
    frame: (group) => ({ t: "send", ref: "m", group, body: "AAAA" }),
    expect: ["error:not_found", "error:not_found", "sent", "sent", "sent"],
  },
  accept: {
    frame: (group) => ({ t: "accept", ref: "m", group }),
    expect: ["error:not_found", "error:not_found", "accepted", "accepted", "accepted"],
  },
  ack: {
    frame: (group) => ({ t: "ack", ref: "m", group, seq: 0 }),
    expect: ["error:not_found", "error:not_found", "-", "-", "-"],
  },
  presence: {
    frame: (group) => ({ t: "presence", ref: "m", group }),
    expect: ["error:not_found", "error:not_found", "presence", "presence", "presence"],
  },
  ping: {
    frame: () => ({ t: "ping", ref: "m" }),
    expect: ["pong", "pong", "pong", "pong", "pong"],
  },
};

/** Frame types a client may send: every option of the schemas the relay parses with. */
function frameTypes(): string[] {
  const types = ClientFrame.options.map((o) => String(o.shape.t.value));
  for (const option of AuthFrame.options) types.push(String(option.shape.t.value));
  return [...new Set(types)].sort();
}

async function buildWorld(t: { url: string; clock: { advance(ms: number): void } }) {
  const w = new World(t.url);
  const url = t.url;
  w.ownerRoot = await generateKeyPair();
  const identities = new Map<Exclude<Who, "none">, DeviceIdentity>();
  for (const who of WHO) {
    if (who === "none") continue;
    identities.set(who, await createDeviceIdentity(who === "revoked" ? w.ownerRoot : undefined));
  }
  identities.set("owner", await createDeviceIdentity(w.ownerRoot));
  const expired = new HttpClient(url);
  const { token: expiredToken } = await expired.register(identities.get("expired")!);
  // Every token issued so far expires (SEALPOST_TOKEN_TTL is 1 h); the others are issued after.
  t.clock.advance(2 * 3_600_000);
  for (const [who, identity] of identities) {
    if (who === "expired") {
      w.principals.set(who, { identity, api: expired, token: expiredToken });
      continue;
    }
    const api = new HttpClient(url);
    const { token } = await api.register(identity);
    w.principals.set(who, { identity, api, token });
  }
  await w.p("owner").api.revokeDevice(identities.get("revoked")!.device.id);
  w.shared = (await w.p("owner").api.createGroup({
    members: [identities.get("nonMember")!.account],
  })).id;
  w.outsider = await registerAccount(url);
  await w.p("owner").api.uploadKeyPackages("mls", ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE"], "FFFF");
  return w;
}

/** Runs one HTTP cell; returns a description of the mismatch, or null. */
async function runCell(w: World, route: string, row: Row, who: Who): Promise<string | null> {
  const [method] = route.split(" ");
  const request = await row.build(w, who);
  const headers: Record<string, string> = { ...request.headers };
  const token = w.token(who);
  if (token) headers.authorization = `Bearer ${token}`;
  let body: BodyInit | undefined;
  if (request.raw) body = request.raw as Uint8Array<ArrayBuffer>;
  else if (request.body !== undefined) {
    body = JSON.stringify(request.body);
    headers["content-type"] = "application/json";
  }
  const response = await fetch(`${w.url}${request.path}`, {
    method,
    headers,
    body,
    redirect: "manual",
  });
  const text = await response.text();
  const expected = row.expect[who];
  const [status, code] = typeof expected === "number" ? [expected, undefined] : expected;
  let gotCode: string | undefined;
  try {
    gotCode = JSON.parse(text)?.error?.code;
  } catch { /* not JSON: the dashboard's pages */ }
  if (response.status === status && (code === undefined || gotCode === code)) return null;
  return `${route} as ${who}: expected ${status}${code ? ` ${code}` : ""}, got ${response.status}${
    gotCode ? ` ${gotCode}` : ""
  } ${text.slice(0, 120)}`;
}

/** Runs one WebSocket cell: the outcome as `close:<code>` or the reply types. */
async function runFrameCell(
  wsUrl: string,
  w: World,
  frame: unknown,
  who: Who,
): Promise<string> {
  const socket = new WebSocket(wsUrl);
  const frames: Record<string, unknown>[] = [];
  let closed: number | null = null;
  let wake = () => {};
  socket.onmessage = (e) => {
    frames.push(JSON.parse(String(e.data)));
    wake();
  };
  socket.onclose = (e) => {
    closed = e.code;
    wake();
  };
  socket.onerror = () => {};
  const until = async (done: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!done() && closed === null && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100);
      });
    }
  };
  try {
    await until(() => frames.some((f) => f.t === "hello"));
    const isAuth = (frame as { t?: string }).t === "auth";
    if (who !== "none" && !(isAuth && who !== "expired" && who !== "revoked")) {
      socket.send(JSON.stringify({ t: "auth", token: w.token(who) }));
      await until(() => frames.some((f) => f.t === "ready"));
    }
    frames.length = 0;
    const sent = isAuth && who !== "none" ? { t: "auth", token: w.token(who) } : frame;
    socket.send(JSON.stringify(sent));
    if (isAuth) await until(() => frames.some((f) => f.t === "ready"));
    else {
      // Unauthenticated, the relay closes at the first frame: a second frame sent into that
      // close can make the relay's kernel reset the connection (unread data at close), and the
      // client then sees an abnormal closure instead of the close code. Wait for the close first.
      if (who === "none") {
        const deadline = Date.now() + 2000;
        await until(() => frames.length > 0 || Date.now() > deadline);
        if (closed !== null) return `close:${closed}`;
      }
      socket.send(JSON.stringify({ t: "ping", ref: "end" }));
      await until(() => frames.some((f) => f.t === "pong" && f.ref === "end"));
      // A reply that needs the database (a send's commit) may come after the pong: give the
      // frame's own answer (it carries ref "m") a moment more before taking "no reply".
      const deadline = Date.now() + 1000;
      await until(() => frames.some((f) => f.ref === "m") || Date.now() > deadline);
    }
    if (closed !== null) return `close:${closed}`;
    const replies = frames.filter((f) => !(f.t === "pong" && f.ref === "end") && f.t !== "msg")
      .map((f) => f.t === "error" ? `error:${f.code}` : String(f.t));
    return replies.length === 0 ? "-" : [...new Set(replies)].join(",");
  } finally {
    socket.close();
  }
}

testBothDatabases(
  "authorization matrix: every route and frame × 8 callers answers as documented",
  (db) =>
    withRelay(db, { env: ENV, logLevel: "warn" }, async (t) => {
      // The rows are exactly the routes the running app serves.
      const routes = new Set(t.relay.routes().map((r) => `${r.method} ${r.path}`));
      const rows = new Set(Object.keys(ROWS));
      assert.deepEqual(
        [...routes].filter((r) => !rows.has(r)).sort(),
        [],
        "routes without a row in the authorization matrix (tests/e2e/authorization_test.ts)",
      );
      assert.deepEqual([...rows].filter((r) => !routes.has(r)).sort(), [], "rows for no route");
      assert.deepEqual(
        frameTypes(),
        Object.keys(FRAME_ROWS).sort(),
        "frame types without a row in the authorization matrix",
      );

      const w = await buildWorld(t);
      const mismatches: string[] = [];
      let cells = 0;
      for (const [route, row] of Object.entries(ROWS)) {
        for (const who of WHO) {
          const problem = await runCell(w, route, row, who);
          if (problem) mismatches.push(problem);
          cells++;
        }
      }

      const { id: group } = await w.group();
      for (const [type, row] of Object.entries(FRAME_ROWS)) {
        const expect: Record<Who, string> = {
          none: "close:4001",
          expired: "close:4001",
          revoked: "close:4003",
          other: row.expect[0],
          nonMember: row.expect[1],
          member: row.expect[2],
          admin: row.expect[3],
          owner: row.expect[4],
        };
        for (const who of WHO) {
          const got = await runFrameCell(t.wsUrl, w, row.frame(group), who);
          if (got !== expect[who]) {
            mismatches.push(`frame ${type} as ${who}: expected ${expect[who]}, got ${got}`);
          }
          cells++;
        }
      }
      assert.deepEqual(mismatches, [], `${mismatches.length} of ${cells} cells differ`);

      // The metrics row's other side: the metrics token itself is let in.
      const metrics = await call(t.url, "GET", "/metrics", { token: ENV.SEALPOST_METRICS_TOKEN });
      assert.equal(metrics.status, 200);
      // And a signed data URL without its signature is refused whoever calls.
      const blob = await w.blob(true);
      const unsigned = await call(t.url, "PUT", `/v1/blobs/${blob.id}/data`, {
        token: w.token("owner"),
      });
      assert.equal(unsigned.status, 403);
    }),
);

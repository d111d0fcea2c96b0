/**
 * Tests of the API as data (relay/api/openapi.ts, asyncapi.ts, operations/): the served
 * OpenAPI 3.1 and AsyncAPI 3.0 documents pass real validators from npm; the OpenAPI paths are
 * exactly the app's routes as Hono lists them (a route missing from the document, or a
 * documented route the relay lacks, fails); every documented example is replayed against a
 * real relay (PGlite and Postgres) and the answer checked against the documented schema with a
 * JSON Schema validator; a WebSocket session's frames are checked against the AsyncAPI schemas.
 */

import assert from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Parser } from "@asyncapi/parser";
import { Ajv2020 } from "ajv/dist/2020.js";
import { Ajv } from "ajv";
import { createDeviceIdentity, proveNonce } from "../../../client/mod.ts";
import { call, withRelay } from "../../helpers/http.ts";
import { testBothDatabases } from "../../helpers/relay.ts";
import { RawSocket } from "../../helpers/ws.ts";
import { newDevice } from "../../helpers/accounts.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const ENV = { SEALPOST_UNIFIEDPUSH_ALLOW_PRIVATE: "true" };

/** A JSON pointer token (RFC 6901). */
const pointer = (token: string) => token.replace(/~/g, "~0").replace(/\//g, "~1");

/** Compiles validators for schemas at JSON pointers of a document. */
function schemaChecker(doc: Json, draft: "2020-12" | "7") {
  const ajv = draft === "2020-12"
    ? new Ajv2020({ strict: false, allErrors: true })
    : new Ajv({ strict: false, allErrors: true });
  ajv.addSchema(doc, "doc");
  return (at: string, value: unknown, what: string) => {
    const validate = ajv.compile({ $ref: `doc#${at}` });
    assert.ok(
      validate(value),
      `${what} does not match ${at}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value)}`,
    );
  };
}

async function documents(url: string): Promise<{ openapi: Json; asyncapi: Json }> {
  const openapi = (await call(url, "GET", "/v1/openapi.json")).body;
  const asyncapi = (await call(url, "GET", "/v1/asyncapi.json")).body;
  return { openapi, asyncapi };
}

Deno.test({
  name: "openapi.json and asyncapi.json pass the OpenAPI 3.1 and AsyncAPI validators",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withRelay("pglite", { env: ENV }, async (t) => {
      const { openapi, asyncapi } = await documents(t.url);
      assert.equal(openapi.openapi, "3.1.0");
      const result = await new Validator().validate(openapi);
      assert.deepEqual(result, { valid: true });
      const diagnostics = await new Parser().validate(JSON.stringify(asyncapi));
      const errors = diagnostics.filter((d) => d.severity === 0);
      assert.deepEqual(errors.map((d) => `${d.path.join(".")}: ${d.message}`), []);
      const info = (await call(t.url, "GET", "/v1/info")).body;
      assert.ok(info.features.includes("openapi") && info.features.includes("asyncapi"));
    }),
});

/** The admin dashboard's HTML pages (docs/admin.md), mounted by serve: not part of the API. */
const isDashboard = (path: string) => path.startsWith("/admin") || path === "/join";

Deno.test({
  name: "the OpenAPI paths are exactly the relay's routes (admin dashboard aside)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withRelay("pglite", { env: ENV }, async (t) => {
      const { openapi } = await documents(t.url);
      const documented = new Set<string>();
      for (const [path, item] of Object.entries<Json>(openapi.paths)) {
        for (const method of Object.keys(item)) {
          documented.add(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`);
        }
      }
      const routes = new Set(
        t.relay.routes().filter((r) => !isDashboard(r.path)).map((r) => `${r.method} ${r.path}`),
      );
      assert.ok(routes.size > 20, `only ${routes.size} routes listed`);
      const undocumented = [...routes].filter((r) => !documented.has(r)).sort();
      const missing = [...documented].filter((r) => !routes.has(r)).sort();
      assert.deepEqual(undocumented, [], "routes missing from relay/api/operations/");
      assert.deepEqual(missing, [], "documented routes the relay does not have");
    }),
});

Deno.test("every documented example matches its own documented schema", async () => {
  // Built in-process: the same functions serve the documents.
  const { openApiDocument } = await import("../../../relay/api/openapi.ts");
  const openapi: Json = openApiDocument({ version: "test" });
  const check = schemaChecker(openapi, "2020-12");
  let examples = 0;
  for (const [path, item] of Object.entries<Json>(openapi.paths)) {
    for (const [method, op] of Object.entries<Json>(item)) {
      const at = `/paths/${pointer(path)}/${method}`;
      const request = op.requestBody?.content?.["application/json"];
      if (request?.example !== undefined) {
        check(
          `${at}/requestBody/content/application~1json/schema`,
          request.example,
          op.operationId,
        );
        examples++;
      }
      for (const [status, answer] of Object.entries<Json>(op.responses)) {
        const media = answer.content?.["application/json"];
        if (media?.example === undefined) continue;
        check(
          `${at}/responses/${status}/content/application~1json/schema`,
          media.example,
          `${op.operationId} ${status}`,
        );
        examples++;
      }
    }
  }
  assert.ok(examples > 25, `only ${examples} examples`);
});

testBothDatabases("every documented example replays against a real relay", async (db) => {
  await withRelay(db, { env: ENV }, async (t) => {
    const { openapi, asyncapi } = await documents(t.url);
    const check = schemaChecker(openapi, "2020-12");
    const checkFrame = schemaChecker(asyncapi, "7");

    // The live state the examples' identifiers stand for.
    const me = await createDeviceIdentity();
    const other = await newDevice(t.url, "other");
    let token = "";
    let group = "";
    let upload: Json;
    let blob = "";
    let download = "";
    const freshNonce = async () => (await call(t.url, "POST", "/v1/auth/challenge")).body.nonce;

    const replayed: string[] = [];
    for (const [path, method, op] of replayOrder(openapi)) {
      {
        const at = `/paths/${pointer(path)}/${method}`;
        const id: string = op.operationId;
        const responses = Object.entries<Json>(op.responses);
        const withExample = responses.find(([, a]) =>
          a.content?.["application/json"]?.example !== undefined
        );
        const successes = responses.filter(([s]) => /^[123]\d\d$/.test(s));
        const expected = Number(withExample?.[0] ?? successes[0][0]);
        if (withExample === undefined) assert.equal(successes.length, 1, `${id}: which status?`);

        if (id === "websocket") {
          await websocketSession(t.wsUrl, token, group, checkFrame);
          replayed.push(id);
          continue;
        }
        if (id === "sealedWebsocket") {
          // The sealed socket's frames against the AsyncAPI document's `sealed` channel.
          const sealed = await RawSocket.open(t.wsUrl.replace("/v1/ws", "/v1/sealed/ws"));
          assert.equal(sealed.hello.sealed, true);
          assert.ok(asyncapi.channels.sealed.messages["client.sealed_send"]);
          checkFrame("/components/messages/relay.hello/payload", sealed.hello, "sealed hello");
          const cap = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"; // operations/examples.ts
          const send = { t: "send", ref: 1, group, cap, body: "AAAA", client_id: "ws-sealed" };
          checkFrame("/components/messages/client.sealed_send/payload", send, "sealed send");
          sealed.send(send);
          const answer = await sealed.next((f) => f.t === "sent" || f.t === "error");
          checkFrame(`/components/messages/relay.${answer.t}/payload`, answer, "sealed answer");
          sealed.close();
          replayed.push(id);
          continue;
        }
        let body = op.requestBody?.content?.["application/json"]?.example;
        if (id === "register") {
          const nonce = await freshNonce();
          body = {
            ...body,
            account: me.account,
            device: me.device.id,
            cert: me.cert,
            nonce,
            sig: await proveNonce(me.device, nonce),
          };
        } else if (id === "login") {
          const nonce = await freshNonce();
          body = { device: me.device.id, nonce, sig: await proveNonce(me.device, nonce) };
        } else if (id === "createBlob") body = { ...body, group };
        else if (id === "ack") body = { cursors: { [group]: Object.values(body.cursors)[0] } };

        const params: Record<string, string> = {
          id: path.startsWith("/v1/blobs/") ? blob : group,
          account: path.includes("/members/") ? other.account : me.account,
          device: me.device.id,
        };
        let url = path.replace(/\{(\w+)\}/g, (_, name) => params[name]);
        const query = new URLSearchParams();
        for (const p of op.parameters ?? []) {
          if (p.in === "query" && p.example !== undefined) query.set(p.name, p.example);
        }
        if (query.size) url += `?${query}`;
        const headers: Record<string, string> = {};
        let raw: BodyInit | undefined = body === undefined ? undefined : JSON.stringify(body);
        if (id === "uploadBlob") {
          url = new URL(upload.url).pathname + new URL(upload.url).search;
          Object.assign(headers, upload.headers);
          raw = "hello";
        } else if (id === "readBlob") url = download;
        if (op.security?.some((s: Json) => "bearer" in s)) {
          headers.authorization = `Bearer ${token}`;
        }

        const response = await fetch(`${t.url}${url}`, {
          method: method.toUpperCase(),
          headers,
          body: raw,
          redirect: "manual",
        });
        const text = await response.text();
        assert.equal(response.status, expected, `${id} ${url}: ${text}`);
        const media = op.responses[String(expected)].content;
        if (media?.["application/json"]?.schema) {
          const answer = JSON.parse(text);
          check(
            `${at}/responses/${expected}/content/application~1json/schema`,
            answer,
            `${id}'s answer`,
          );
          if (id === "register") token = answer.token;
          if (id === "createGroup") group = answer.id;
          if (id === "createBlob") [blob, upload] = [answer.id, answer.upload];
        } else if (media) {
          const type = Object.keys(media)[0];
          assert.ok(response.headers.get("content-type")?.startsWith(type), `${id} content-type`);
        }
        if (id === "createGroup") {
          // The member examples need the other account to exist; the replay adds and removes it.
          assert.ok(group);
        }
        if (id === "downloadBlob") {
          const location = new URL(response.headers.get("location")!, t.url);
          download = location.pathname + location.search;
        }
        if (id === "readBlob") assert.equal(text, "hello");
        replayed.push(id);
      }
    }
    assert.ok(replayed.includes("revokeDevice") && replayed.length > 25, replayed.join(","));
    // The self-revoked device's token is dead now.
    assert.equal((await call(t.url, "GET", "/v1/groups", { token })).status, 403);
  });
});

/** Calls that need an earlier answer, or destroy state others need, run last in this order. */
const LAST = [
  "sealedSend",
  "clearSendCapability",
  "downloadBlob",
  "readBlob",
  "deletePushTarget",
  "removeMember",
  "deleteGroup",
  "revokeDevice",
];

/** The document's operations in document order, those of {@link LAST} moved to the end. */
function replayOrder(openapi: Json): [string, string, Json][] {
  const all: [string, string, Json][] = [];
  for (const [path, item] of Object.entries<Json>(openapi.paths)) {
    for (const [method, op] of Object.entries<Json>(item)) all.push([path, method, op]);
  }
  const rank = (op: Json) => LAST.indexOf(op.operationId);
  return [
    ...all.filter(([, , op]) => rank(op) < 0),
    ...all.filter(([, , op]) => rank(op) >= 0).sort((a, b) => rank(a[2]) - rank(b[2])),
  ];
}

/** Authenticates a socket and checks every frame the relay sends against the AsyncAPI schemas. */
async function websocketSession(
  wsUrl: string,
  token: string,
  group: string,
  check: (at: string, value: unknown, what: string) => void,
): Promise<void> {
  const frame = (f: { t: string }) =>
    check(`/components/messages/relay.${f.t}/payload`, f, `the relay's ${f.t} frame`);
  const clientFrame = (f: { t: string }) =>
    check(`/components/messages/client.${f.t}/payload`, f, `the client's ${f.t} frame`);
  const ws = await RawSocket.open(wsUrl);
  try {
    frame(ws.hello);
    const auth = { t: "auth", token };
    clientFrame(auth);
    ws.send(auth);
    frame(await ws.next((f) => f.t === "ready"));
    const frames = [
      { t: "sub", groups: [group], presence: true },
      { t: "send", ref: 1, group, client_id: "ws-1", body: "d3M" },
      { t: "send", ref: 2, group, body: "ZXBo", ephemeral: true },
      { t: "presence", ref: 3, group },
      { t: "ack", group, seq: 1 },
      { t: "ping", ref: 4 },
      { t: "presence", ref: 5, group: "AAAAAAAAAAAAAAAAAAAAAA" },
    ];
    for (const f of frames) {
      clientFrame(f);
      ws.send(f);
    }
    for (const t of ["synced", "sent", "msg", "presence", "pong", "error"]) {
      frame(await ws.next((f) => f.t === t));
    }
  } finally {
    ws.close();
  }
}

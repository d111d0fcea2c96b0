/**
 * Tests of relay/api/body_limit.ts and the JSON bounds of readBody: bodies over a route's limit
 * are refused `413 too_large` while being read (declared or chunked, the rest never read), deep
 * and wide JSON is `400 invalid_request` (never a 500), and the relay's own blob upload stops at
 * the declared size. Runs on PGlite and on real Postgres.
 */

import assert from "node:assert/strict";
import { blobDigest } from "../../../client/mod.ts";
import { cipher } from "../../helpers/accounts.ts";
import { call, registered, relaySuite } from "../../helpers/http.ts";
import { apiBodyBytes } from "../../../relay/config/limits.ts";

const MiB = 1024 * 1024;

/**
 * Sends a request over a raw socket: headers, then up to `bodyBytes` of body (chunked when
 * `chunked`), written in the background so a relay that answers early is not waited on. Returns
 * the status and how many body bytes the socket accepted before the answer came.
 */
async function raw(
  url: string,
  method: string,
  path: string,
  bodyBytes: number,
  options: { chunked?: boolean; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string; sent: number }> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const head = [
    `${method} ${path} HTTP/1.1`,
    `host: ${hostname}`,
    options.chunked ? "transfer-encoding: chunked" : `content-length: ${bodyBytes}`,
    ...Object.entries(options.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ].join("\r\n");
  let sent = 0;
  const encoder = new TextEncoder();
  const writing = (async () => {
    await conn.write(encoder.encode(head));
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    while (sent < bodyBytes) {
      const n = Math.min(chunk.length, bodyBytes - sent);
      const piece = chunk.subarray(0, n);
      const framed = options.chunked
        ? new Uint8Array([...encoder.encode(`${n.toString(16)}\r\n`), ...piece, 13, 10])
        : piece;
      let written = 0;
      while (written < framed.length) written += await conn.write(framed.subarray(written));
      sent += n;
    }
    if (options.chunked) await conn.write(encoder.encode("0\r\n\r\n"));
  })().catch(() => {}); // the relay may close the socket once it has answered
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  const deadline = Date.now() + 30_000;
  while (!/\r\n\r\n/.test(text) && Date.now() < deadline) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  const answeredAfter = sent;
  // Read a little more for the body, then hang up.
  const n = await Promise.race([
    conn.read(buffer).catch(() => null),
    new Promise<null>((resolve) => setTimeout(() => resolve(null), 200)),
  ]);
  if (n) text += new TextDecoder().decode(buffer.subarray(0, n));
  try {
    conn.close();
  } catch { /* closed */ }
  await writing;
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, body: text.split("\r\n\r\n").slice(1).join(""), sent: answeredAfter };
}

function nested(depth: number): string {
  return `{"device":${"[".repeat(depth)}${"]".repeat(depth)}}`;
}

relaySuite("bounded bodies", {}, {
  "a declared 64 MiB body is refused 413 before it is read": async (t) => {
    const { api } = await registered(t);
    const answer = await raw(t.url, "POST", "/v1/ack", 64 * MiB, {
      headers: { authorization: `Bearer ${api.token}`, "content-type": "application/json" },
    });
    assert.equal(answer.status, 413);
    assert.match(answer.body, /"too_large"/);
    assert.ok(answer.sent < 16 * MiB, `answered after ${answer.sent} bytes were written`);
  },

  "a chunked body is refused 413 as soon as it passes the limit": async (t) => {
    const answer = await raw(t.url, "POST", "/v1/auth/login", 64 * MiB, { chunked: true });
    assert.equal(answer.status, 413);
    assert.match(answer.body, /"too_large"/);
    assert.ok(answer.sent < 16 * MiB, `answered after ${answer.sent} bytes were written`);
    // A body just under the limit is read (and then judged on its content).
    const under = await call(t.url, "POST", "/v1/auth/login", {
      body: `{"pad":"${"a".repeat(apiBodyBytes(t.config) - 20)}"}`,
    });
    assert.equal(under.status, 400);
  },

  "an admin form over a few KiB is refused 413": async (t) => {
    const answer = await raw(t.url, "POST", "/admin/login", 32 * MiB, {
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    assert.equal(answer.status, 413);
    const chunked = await raw(t.url, "POST", "/admin/login", 32 * MiB, {
      chunked: true,
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    assert.equal(chunked.status, 413);
  },

  "JSON nested 20,000 deep or 10,001 wide is 400 invalid_request, not 500": async (t) => {
    const deep = await call(t.url, "POST", "/v1/auth/login", { body: nested(20_000) });
    assert.equal(deep.status, 400);
    assert.equal(deep.body.error.code, "invalid_request");
    assert.match(deep.body.error.message, /nested deeper than 32 levels/);
    const wide = await call(t.url, "POST", "/v1/auth/login", {
      body: { extra: new Array(10_001).fill(0) },
    });
    assert.equal(wide.status, 400);
    assert.match(wide.body.error.message, /more than 10000 entries/);
    // Within bounds the schema speaks as before.
    const ok = await call(t.url, "POST", "/v1/auth/login", { body: nested(5) });
    assert.equal(ok.status, 400);
    assert.match(ok.body.error.message, /device/);
  },

  "an upload to the relay's blob URL stops at the declared size with 413": async (t) => {
    const alice = await registered(t);
    const group = (await alice.api.createGroup()).id;
    const data = new Uint8Array(4096).fill(7);
    const created = await alice.api.createBlob(group, data.length, await blobDigest(data));
    const target = new URL(created.upload.url);
    const path = `${target.pathname}${target.search}`;
    const declared = await raw(t.url, "PUT", path, 64 * MiB);
    assert.equal(declared.status, 413);
    const chunked = await raw(t.url, "PUT", path, 64 * MiB, { chunked: true });
    assert.equal(chunked.status, 413);
    assert.ok(chunked.sent < 16 * MiB, `answered after ${chunked.sent} bytes were written`);
    // The right body still goes in afterwards.
    const put = await fetch(created.upload.url, { method: "PUT", body: data });
    await put.body?.cancel();
    assert.equal(put.status, 204);
    await alice.api.send(group, { body: cipher(), blob: created.id });
  },
});

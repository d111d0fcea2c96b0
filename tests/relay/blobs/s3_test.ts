/**
 * Tests of relay/blobs/s3.ts's public endpoint (`SEALPOST_S3_PUBLIC_URL`) against a real,
 * signature-checking radosgw: the relay reaches the bucket at one address while clients reach it
 * at another (a Docker-internal name vs a published port, here a loopback TCP forwarder on
 * another port). Presigned URLs must point at, and be signed for, the address clients use.
 */

import assert from "node:assert/strict";
import { S3BlobStore } from "../../../relay/blobs/s3.ts";
import { loadConfig } from "../../../relay/config/config.ts";
import { openBlobStore } from "../../../relay/blobs/open.ts";
import { s3Unavailable, sharedS3 } from "../../helpers/s3.ts";

/** Forwards TCP connections from a new loopback port to `target`, as a published port does. */
function forwarder(target: { hostname: string; port: number }) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const inbound of listener) {
      conns.add(inbound);
      Deno.connect(target).then((outbound) => {
        conns.add(outbound);
        inbound.readable.pipeTo(outbound.writable).catch(() => {});
        outbound.readable.pipeTo(inbound.writable).catch(() => {});
      }, () => inbound.close());
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return btoa(String.fromCharCode(...digest)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

const why = s3Unavailable();
if (why) console.warn(`skipping S3 public endpoint tests: ${why}`);

Deno.test({
  name: "S3BlobStore presigns for SEALPOST_S3_PUBLIC_URL and radosgw accepts those URLs there",
  ignore: why !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const s3 = await sharedS3();
    const internal = new URL(s3.endpoint);
    const published = forwarder({ hostname: internal.hostname, port: Number(internal.port) });
    try {
      const config = loadConfig({ ...s3.env, SEALPOST_S3_PUBLIC_URL: published.url });
      assert.equal(config.s3PublicUrl, published.url);
      const store = openBlobStore(config);
      const body = new TextEncoder().encode("ciphertext via the published port");
      const key = `pub${crypto.randomUUID().replaceAll("-", "")}`;
      const window = { now: Date.now(), ttlMs: 60_000 };
      const up = await store.uploadUrl(
        key,
        { size: body.length, sha256: await sha256(body) },
        window,
      );
      assert.ok(up.url.startsWith(`${published.url}/`), up.url);

      // Signed for the internal host, the same request to the published address is refused:
      // the signature covers Host, which is why the setting exists.
      const internalStore = new S3BlobStore({
        endpoint: s3.endpoint,
        region: s3.region,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        bucket: s3.bucket,
        pathStyle: "true",
      });
      const wrong = await internalStore.uploadUrl(key, {
        size: body.length,
        sha256: await sha256(body),
      }, window);
      const wrongUrl = wrong.url.replace(s3.endpoint, published.url);
      const refused = await fetch(wrongUrl, { method: "PUT", headers: wrong.headers, body });
      await refused.body?.cancel();
      assert.equal(refused.status, 403);

      const put = await fetch(up.url, { method: "PUT", headers: up.headers, body });
      assert.equal(put.status, 200, await put.text());
      // The relay's own calls still go to the internal endpoint.
      assert.deepEqual((await store.stat(key))?.size, body.length);
      const down = await store.downloadUrl(key, window);
      assert.ok(down.startsWith(`${published.url}/`), down);
      const got = await fetch(down);
      assert.equal(got.status, 200);
      assert.deepEqual(new Uint8Array(await got.arrayBuffer()), body);
      await store.delete(key);
    } finally {
      published.close();
    }
  },
});

Deno.test("S3BlobStore without a public endpoint presigns for the endpoint it uses", async () => {
  const store = new S3BlobStore({
    endpoint: "http://seaweedfs:8333",
    region: "us-east-1",
    accessKeyId: "a",
    secretAccessKey: "b",
    bucket: "blobs",
    pathStyle: "true",
  });
  const url = await store.downloadUrl("abc", { now: Date.now(), ttlMs: 1000 });
  assert.ok(url.startsWith("http://seaweedfs:8333/blobs/blobs/abc?"), url);
  const pub = new S3BlobStore({
    endpoint: "http://seaweedfs:8333",
    publicEndpoint: "https://s3.example.net",
    region: "us-east-1",
    accessKeyId: "a",
    secretAccessKey: "b",
    bucket: "blobs",
    pathStyle: "true",
  });
  const signed = await pub.downloadUrl("abc", { now: Date.now(), ttlMs: 1000 });
  assert.ok(signed.startsWith("https://s3.example.net/blobs/blobs/abc?"), signed);
});

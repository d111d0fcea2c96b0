/**
 * @module
 * Local push services for the push tests, verifying requests the way the real service does,
 * over TLS with a test CA (made with openssl) the relay is told to trust. This file holds the
 * TLS pieces and {@link WebPushService}: a push service plus the browser behind it.
 * Subscriptions get a fresh P-256 key pair and auth secret; each request's VAPID JWT is verified
 * (ES256 with the `k` key, `aud` the endpoint's origin, `exp` within 24 hours, a contact `sub`)
 * and its `aes128gcm` body decrypted with the subscription's private key (RFC 8291, implemented
 * here independently of the relay's code, with HMAC-based HKDF). APNs and FCM are in
 * `push_services.ts`. Each answers 2xx unless a test scripted an answer.
 */

import assert from "node:assert/strict";
import { decodeProtectedHeader, jwtVerify } from "jose";
import { fromBase64Url, toBase64Url } from "../../relay/base/encoding.ts";
import { ManualClock } from "../../relay/base/clock.ts";
import { VapidSigner } from "../../relay/push/vapid.ts";

// ---------------------------------------------------------------------------------------------
// TLS

/** A test CA and a certificate for `localhost` and `127.0.0.1` it signed. */
/** A VAPID signer with a fresh P-256 key, for tests that send Web Push but never verify it. */
export async function testVapidSigner(): Promise<VapidSigner> {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  return new VapidSigner(
    { privateKey: pair.privateKey, publicKey: "unused" },
    "mailto:ops@example.com",
    new ManualClock(Date.now()),
  );
}

export type TestCertificates = { ca: string; cert: string; key: string };

let certificates: Promise<TestCertificates> | null = null;

async function openssl(cwd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Generates (once per process) a CA and a server certificate with openssl. */
export function testCertificates(): Promise<TestCertificates> {
  certificates ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "sealpost-tls-" });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    await openssl(dir, [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=Sealpost test CA",
    ]);
    await openssl(dir, [
      "req",
      ...ec,
      "-keyout",
      "key.pem",
      "-out",
      "leaf.csr",
      "-subj",
      "/CN=localhost",
    ]);
    await Deno.writeTextFile(
      `${dir}/ext.cnf`,
      "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" +
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    await openssl(dir, [
      "x509",
      "-req",
      "-in",
      "leaf.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "cert.pem",
      "-days",
      "2",
      "-extfile",
      "ext.cnf",
    ]);
    const read = (name: string) => Deno.readTextFile(`${dir}/${name}`);
    const out = {
      ca: await read("ca.pem"),
      cert: await read("cert.pem"),
      key: await read("key.pem"),
    };
    await Deno.remove(dir, { recursive: true });
    return out;
  })();
  return certificates;
}

/** An HTTPS server on 127.0.0.1 with the test certificate. */
export async function serveTls(
  handler: (request: Request) => Response | Promise<Response>,
): Promise<{ origin: string; close(): Promise<void> }> {
  const { cert, key } = await testCertificates();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert, key, onListen: () => {} },
    async (request) => {
      try {
        return await handler(request);
      } catch (error) {
        // A failed check answers 400 and is recorded by the caller's service.
        return new Response(`test service: ${(error as Error).message}`, { status: 400 });
      }
    },
  );
  return {
    origin: `https://127.0.0.1:${server.addr.port}`,
    close: () => server.shutdown(),
  };
}

/** A scripted answer. */
export type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

/** A Response for a scripted answer, or the fallback. */
export function answer(a: Answer | undefined, fallback: Answer): Response {
  const use = a ?? fallback;
  const body = use.body === undefined
    ? null
    : typeof use.body === "string"
    ? use.body
    : JSON.stringify(use.body);
  return new Response(body, { status: use.status, headers: use.headers });
}

/** Concatenates byte arrays. */
function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const text = (s: string) => new TextEncoder().encode(s);

async function hmac(key: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>) {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data));
}

/** RFC 5869 HKDF written out with HMAC (at most one block of output). */
async function hkdf(
  salt: Uint8Array<ArrayBuffer>,
  ikm: Uint8Array<ArrayBuffer>,
  info: Uint8Array<ArrayBuffer>,
  length: number,
) {
  const prk = await hmac(salt, ikm);
  return (await hmac(prk, concat(info, new Uint8Array([1])))).slice(0, length);
}

/**
 * Decrypts an RFC 8291 `aes128gcm` body as the user agent does: the sender's key from the
 * header, ECDH with the subscription's private key, HKDF with the auth secret, AES-128-GCM,
 * then the padding delimiter.
 */
export async function decryptWebPush(
  body: Uint8Array<ArrayBuffer>,
  subscription: {
    privateKey: CryptoKey;
    publicRaw: Uint8Array<ArrayBuffer>;
    auth: Uint8Array<ArrayBuffer>;
  },
): Promise<Uint8Array> {
  const salt = body.slice(0, 16);
  const recordSize = new DataView(body.buffer, body.byteOffset).getUint32(16);
  assert.ok(recordSize >= 18, "record size");
  const idLength = body[20];
  assert.equal(idLength, 65, "the key id is the sender's 65-byte public key");
  const asPublic = body.slice(21, 21 + idLength);
  const ciphertext = body.slice(21 + idLength);
  assert.ok(ciphertext.length <= recordSize, "one record");
  const asKey = await crypto.subtle.importKey(
    "raw",
    asPublic,
    { name: "ECDH", namedCurve: "P-256" },
    false,
    [],
  );
  const secret = new Uint8Array(
    await crypto.subtle.deriveBits({ name: "ECDH", public: asKey }, subscription.privateKey, 256),
  );
  const ikm = await hkdf(
    subscription.auth,
    secret,
    concat(text("WebPush: info\0"), subscription.publicRaw, asPublic),
    32,
  );
  const cek = await hkdf(salt, ikm, text("Content-Encoding: aes128gcm\0"), 16);
  const nonce = await hkdf(salt, ikm, text("Content-Encoding: nonce\0"), 12);
  const key = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["decrypt"]);
  const padded = new Uint8Array(
    await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce }, key, ciphertext),
  );
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  assert.equal(padded[end], 2, "the last record ends with the 0x02 delimiter");
  return padded.slice(0, end);
}

// ---------------------------------------------------------------------------------------------
// Web Push

/** A subscription as a browser's `PushSubscription.toJSON()` gives it. */
export type Subscription = { endpoint: string; keys: { p256dh: string; auth: string } };

/** What the Web Push service received and verified. */
export type WebPushDelivery = {
  path: string;
  headers: Headers;
  /** The decrypted payload, parsed (or the plain body for keyless UnifiedPush). */
  payload: Record<string, unknown>;
  encrypted: boolean;
  bytes: number;
  vapid: { sub: string; aud: string; exp: number; key: string };
};

type SubscriptionKeys = {
  privateKey: CryptoKey;
  publicRaw: Uint8Array<ArrayBuffer>;
  auth: Uint8Array<ArrayBuffer>;
};

/** A local Web Push service (and UnifiedPush distributor) with the browsers behind it. */
export class WebPushService {
  readonly deliveries: WebPushDelivery[] = [];
  /** Requests that failed a check, with why. */
  readonly rejected: string[] = [];
  /** Scripted answers per path, used in order; then 201. */
  readonly answers = new Map<string, Answer[]>();
  #keys = new Map<string, SubscriptionKeys | null>();
  #waiters: (() => void)[] = [];

  private constructor(
    readonly origin: string,
    private readonly server: { close(): Promise<void> },
    private readonly now: () => number,
  ) {}

  /** Starts the service; `now` is the clock the relay signs with. */
  static async start(now: () => number = Date.now): Promise<WebPushService> {
    let self: WebPushService | null = null;
    const server = await serveTls((request) => self!.#handle(request));
    self = new WebPushService(server.origin, server, now);
    return self;
  }

  /** A new subscription (P-256 key pair and auth secret), as a browser would make. */
  async subscribe(): Promise<Subscription> {
    const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
      "deriveBits",
    ]) as CryptoKeyPair;
    const publicRaw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    const auth = crypto.getRandomValues(new Uint8Array(16));
    const path = `/push/${crypto.randomUUID()}`;
    this.#keys.set(path, { privateKey: pair.privateKey, publicRaw, auth });
    return {
      endpoint: `${this.origin}${path}`,
      keys: { p256dh: toBase64Url(publicRaw), auth: toBase64Url(auth) },
    };
  }

  /** A keyless UnifiedPush endpoint. */
  endpoint(): string {
    const path = `/up/${crypto.randomUUID()}`;
    this.#keys.set(path, null);
    return `${this.origin}${path}`;
  }

  /** Deliveries to one endpoint. */
  to(endpoint: string): WebPushDelivery[] {
    const path = new URL(endpoint).pathname;
    return this.deliveries.filter((d) => d.path === path);
  }

  /** Waits until `n` deliveries (in all) were verified. */
  async waitFor(n: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.deliveries.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `expected ${n} deliveries, got ${this.deliveries.length}; rejected: ${this.rejected}`,
        );
      }
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, Math.min(left, 100));
      });
    }
  }

  async #handle(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    try {
      return await this.#verify(request, path);
    } catch (error) {
      this.rejected.push(`${path}: ${(error as Error).message}`);
      throw error;
    }
  }

  async #verify(request: Request, path: string): Promise<Response> {
    assert.equal(request.method, "POST");
    if (!this.#keys.has(path)) return new Response("no such subscription", { status: 404 });
    const scripted = this.answers.get(path)?.shift();
    const ttl = request.headers.get("ttl");
    assert.ok(ttl !== null && /^\d+$/.test(ttl), "TTL header (RFC 8030 section 5.2)");
    assert.ok(
      ["very-low", "low", "normal", "high"].includes(request.headers.get("urgency") ?? ""),
      "Urgency header (RFC 8030 section 5.3)",
    );
    const topic = request.headers.get("topic");
    assert.ok(topic === null || /^[A-Za-z0-9_-]{1,32}$/.test(topic), "Topic (RFC 8030 5.4)");
    const vapid = await this.#checkVapid(request);
    const body = new Uint8Array(await request.arrayBuffer());
    const keys = this.#keys.get(path);
    let payload: Record<string, unknown>;
    if (keys) {
      assert.equal(request.headers.get("content-encoding"), "aes128gcm");
      payload = JSON.parse(new TextDecoder().decode(await decryptWebPush(body, keys)));
    } else {
      assert.equal(request.headers.get("content-encoding"), null, "keyless: not encrypted");
      payload = JSON.parse(new TextDecoder().decode(body));
    }
    if (scripted && scripted.status >= 300) return answer(scripted, { status: 201 });
    this.deliveries.push({
      path,
      headers: new Headers(request.headers),
      payload,
      encrypted: keys !== null,
      bytes: body.length,
      vapid,
    });
    for (const wake of this.#waiters.splice(0)) wake();
    return answer(scripted, { status: 201 });
  }

  /** RFC 8292: `Authorization: vapid t=<JWT>, k=<key>`, verified with `k`. */
  async #checkVapid(request: Request): Promise<WebPushDelivery["vapid"]> {
    const header = request.headers.get("authorization") ?? "";
    const match = /^vapid t=([A-Za-z0-9_.-]+), k=([A-Za-z0-9_-]+)$/.exec(header);
    assert.ok(match, `a VAPID authorization header, got '${header.slice(0, 40)}'`);
    const [, jwt, k] = match;
    const raw = fromBase64Url(k);
    assert.ok(raw && raw.length === 65 && raw[0] === 4, "k is an uncompressed P-256 key");
    const key = await crypto.subtle.importKey(
      "raw",
      new Uint8Array(raw),
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["verify"],
    );
    const header0 = decodeProtectedHeader(jwt);
    assert.equal(header0.alg, "ES256");
    const audience = new URL(request.url).origin;
    const { payload } = await jwtVerify(jwt, key, {
      algorithms: ["ES256"],
      audience,
      currentDate: new Date(this.now()),
    });
    assert.ok(typeof payload.exp === "number", "exp claim");
    assert.ok(payload.exp * 1000 <= this.now() + 24 * 3_600_000, "exp at most 24 hours ahead");
    assert.ok(
      typeof payload.sub === "string" && /^(mailto:|https?:)/.test(payload.sub),
      "sub is a mailto: or https: contact",
    );
    return { sub: payload.sub, aud: audience, exp: payload.exp, key: k };
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

/** Polls `check` until it returns true (or throws after `timeoutMs` with `what`). */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

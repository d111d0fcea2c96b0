/**
 * @module
 * Local APNs and FCM for the push tests (TLS with the test CA of `push.ts`):
 *
 * - {@link ApnsService}: Apple's provider API over HTTP/2 — the request must arrive over h2 (no
 *   `Host` header, which only HTTP/1.1 sends), with the background-push headers and a provider
 *   token verified against the test `.p8` key (ES256, `kid`, `iss` team id, fresh `iat`).
 * - {@link FcmService}: Google's OAuth token endpoint (the RS256 JWT assertion verified with the
 *   test service account's key: `iss`, `scope`, `aud`, lifetime) and the FCM v1 send API (the
 *   bearer token it issued, a data-only message with string values).
 *
 * Each answers 2xx unless a test scripted an answer for a token.
 */

import assert from "node:assert/strict";
import { decodeProtectedHeader, jwtVerify } from "jose";
import { type Answer, answer, serveTls } from "./push.ts";

/** A PKCS#8 PEM of a private key. */
export async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", key));
  const b64 = btoa(String.fromCharCode(...der)).replace(/(.{64})/g, "$1\n");
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

/** An APNs auth key as Apple issues it (a `.p8` file), with its ids. */
export type ApnsKey = { pem: string; keyId: string; teamId: string; publicKey: CryptoKey };

/** Generates a test `.p8` key. */
export async function apnsKey(): Promise<ApnsKey> {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  return {
    pem: await pkcs8Pem(pair.privateKey),
    keyId: "ABC123DEFG",
    teamId: "TEAM123456",
    publicKey: pair.publicKey,
  };
}

/** What the APNs endpoint received. */
export type ApnsDelivery = {
  token: string;
  headers: Headers;
  body: Record<string, unknown>;
  jwt: { iat: number; kid: string };
};

/** A local APNs provider API (HTTP/2 over TLS). */
export class ApnsService {
  readonly deliveries: ApnsDelivery[] = [];
  readonly rejected: string[] = [];
  /** Scripted answers per device token, used in order; then 200. */
  readonly answers = new Map<string, Answer[]>();

  private constructor(
    readonly origin: string,
    private readonly server: { close(): Promise<void> },
    private readonly key: ApnsKey,
    private readonly now: () => number,
  ) {}

  static async start(key: ApnsKey, now: () => number = Date.now): Promise<ApnsService> {
    let self: ApnsService | null = null;
    const server = await serveTls((request) => self!.#handle(request));
    self = new ApnsService(server.origin, server, key, now);
    return self;
  }

  async #handle(request: Request): Promise<Response> {
    try {
      return await this.#verify(request);
    } catch (error) {
      this.rejected.push((error as Error).message);
      throw error;
    }
  }

  async #verify(request: Request): Promise<Response> {
    // HTTP/1.1 requests carry Host; HTTP/2 ones carry :authority instead.
    assert.equal(request.headers.get("host"), null, "APNs takes HTTP/2 requests only");
    assert.equal(request.method, "POST");
    const match = /^\/3\/device\/([0-9a-fA-F]+)$/.exec(new URL(request.url).pathname);
    assert.ok(match, "path /3/device/<token>");
    const token = match[1];
    assert.equal(request.headers.get("apns-push-type"), "background");
    assert.equal(request.headers.get("apns-priority"), "5", "background pushes need priority 5");
    assert.ok(request.headers.get("apns-topic"), "apns-topic");
    const auth = /^bearer (\S+)$/.exec(request.headers.get("authorization") ?? "");
    assert.ok(auth, "a bearer provider token");
    const header = decodeProtectedHeader(auth[1]);
    assert.equal(header.alg, "ES256");
    assert.equal(header.kid, this.key.keyId);
    const { payload } = await jwtVerify(auth[1], this.key.publicKey, {
      algorithms: ["ES256"],
      issuer: this.key.teamId,
      currentDate: new Date(this.now()),
    });
    const iat = payload.iat!;
    const age = this.now() / 1000 - iat;
    assert.ok(age >= -60 && age <= 3600, `provider token older than an hour (${age} s)`);
    const body = await request.json();
    assert.equal(body.aps?.["content-available"], 1);
    assert.equal(body.aps?.alert, undefined, "a background push shows nothing");
    const scripted = this.answers.get(token)?.shift();
    if (scripted && scripted.status !== 200) return answer(scripted, { status: 200 });
    this.deliveries.push({
      token,
      headers: new Headers(request.headers),
      body,
      jwt: { iat, kid: header.kid! },
    });
    return answer(scripted, { status: 200, headers: { "apns-id": crypto.randomUUID() } });
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

/** A service account JSON key file as the Firebase console issues it, and its public key. */
export type TestServiceAccount = { json: Record<string, string>; publicKey: CryptoKey };

/** Generates a service account whose token URI points at `tokenUri`. */
export async function serviceAccount(tokenUri: string): Promise<TestServiceAccount> {
  const pair = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  ) as CryptoKeyPair;
  return {
    json: {
      type: "service_account",
      project_id: "sealpost-test",
      private_key_id: "key-1",
      private_key: await pkcs8Pem(pair.privateKey),
      client_email: "relay@sealpost-test.iam.gserviceaccount.com",
      client_id: "1234567890",
      token_uri: tokenUri,
    },
    publicKey: pair.publicKey,
  };
}

/** What the FCM endpoint received. */
export type FcmDelivery = { token: string; message: Record<string, unknown> };

/** A local Google OAuth token endpoint and FCM v1 API. */
export class FcmService {
  readonly deliveries: FcmDelivery[] = [];
  readonly rejected: string[] = [];
  /** Token exchanges made, with the verified assertion's claims. */
  readonly exchanges: Record<string, unknown>[] = [];
  /** Scripted answers per registration token, used in order; then 200. */
  readonly answers = new Map<string, Answer[]>();
  #issued = new Set<string>();
  account: TestServiceAccount | null = null;

  private constructor(
    readonly origin: string,
    private readonly server: { close(): Promise<void> },
    private readonly now: () => number,
  ) {}

  static async start(now: () => number = Date.now): Promise<FcmService> {
    let self: FcmService | null = null;
    const server = await serveTls((request) => self!.#handle(request));
    self = new FcmService(server.origin, server, now);
    self.account = await serviceAccount(`${server.origin}/token`);
    return self;
  }

  /** Invalidates every access token issued so far (the next send gets 401). */
  revokeTokens(): void {
    this.#issued.clear();
  }

  async #handle(request: Request): Promise<Response> {
    try {
      const path = new URL(request.url).pathname;
      if (path === "/token") return await this.#token(request);
      return await this.#send(request, path);
    } catch (error) {
      this.rejected.push((error as Error).message);
      throw error;
    }
  }

  async #token(request: Request): Promise<Response> {
    assert.equal(request.method, "POST");
    assert.equal(request.headers.get("content-type"), "application/x-www-form-urlencoded");
    const form = new URLSearchParams(await request.text());
    assert.equal(form.get("grant_type"), "urn:ietf:params:oauth:grant-type:jwt-bearer");
    const assertion = form.get("assertion") ?? "";
    const account = this.account!;
    const header = decodeProtectedHeader(assertion);
    assert.equal(header.alg, "RS256");
    assert.equal(header.kid, account.json.private_key_id);
    const { payload } = await jwtVerify(assertion, account.publicKey, {
      algorithms: ["RS256"],
      issuer: account.json.client_email,
      audience: account.json.token_uri,
      currentDate: new Date(this.now()),
    });
    assert.equal(payload.scope, "https://www.googleapis.com/auth/firebase.messaging");
    assert.ok(payload.exp! - payload.iat! <= 3600, "an assertion lives at most an hour");
    this.exchanges.push(payload);
    const token = `ya29.test-${crypto.randomUUID()}`;
    this.#issued.add(token);
    return Response.json({ access_token: token, expires_in: 3599, token_type: "Bearer" });
  }

  async #send(request: Request, path: string): Promise<Response> {
    assert.equal(request.method, "POST");
    assert.equal(path, `/v1/projects/${this.account!.json.project_id}/messages:send`);
    const auth = /^Bearer (\S+)$/.exec(request.headers.get("authorization") ?? "");
    assert.ok(auth, "a bearer access token");
    if (!this.#issued.has(auth[1])) {
      return Response.json(
        { error: { code: 401, status: "UNAUTHENTICATED", message: "invalid credentials" } },
        { status: 401 },
      );
    }
    const { message } = await request.json();
    assert.equal(typeof message?.token, "string");
    assert.equal(message.notification, undefined, "a data-only message");
    assert.ok(message.data && typeof message.data === "object", "message.data");
    for (const value of Object.values(message.data)) {
      assert.equal(typeof value, "string", "FCM data values are strings");
    }
    assert.equal(message.android?.priority, "high");
    const scripted = this.answers.get(message.token)?.shift();
    if (scripted && scripted.status !== 200) return answer(scripted, { status: 200 });
    this.deliveries.push({ token: message.token, message });
    return Response.json({ name: `projects/${this.account!.json.project_id}/messages/1` });
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

/** The FCM error body for an unregistered token. */
export const FCM_UNREGISTERED: Answer = {
  status: 404,
  body: {
    error: {
      code: 404,
      message: "Requested entity was not found.",
      status: "NOT_FOUND",
      details: [{
        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
        errorCode: "UNREGISTERED",
      }],
    },
  },
};

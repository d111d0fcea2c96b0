/**
 * @module
 * The APNs sender: Apple's HTTP/2 provider API with token-based authentication. Each request
 * carries an ES256 JWT (`iss` team id, `iat`; header `kid` key id) signed with the `.p8` auth
 * key; Apple wants the token refreshed no more often than every 20 minutes and no less often
 * than every 60, so it is reused for {@link TOKEN_REFRESH_MS} (and renewed early when APNs calls
 * it expired). Wake-ups are background pushes: `apns-push-type: background`, `apns-priority: 5`
 * and `{"aps":{"content-available":1},"sealpost":"wake"}` — nothing shown to the user, the app
 * gets time to sync. Apple can read the payload, so it never carries the group id.
 * A target says whether its token is a sandbox (development build) or production one.
 *
 * APNs speaks only HTTP/2; Deno's `fetch` negotiates it over TLS (ALPN), and the sender's own
 * client is built HTTP/2-only so a server that offered only HTTP/1.1 fails loudly.
 */

import { readCapped } from "../base/bounded_read.ts";
import { SignJWT } from "jose";
import type { Clock } from "../base/clock.ts";
import {
  classifyStatus,
  networkDetail,
  type PushOutcome,
  type PushSender,
  type PushTarget,
  retryAfterMs,
  WAKE_TTL_S,
  wakePayload,
  type WakeUp,
} from "./mod.ts";

/** Apple's hosts. */
export const APNS_PRODUCTION_URL = "https://api.push.apple.com";
export const APNS_SANDBOX_URL = "https://api.sandbox.push.apple.com";

/** A provider token is used this long: inside Apple's 20–60 minute window. */
export const TOKEN_REFRESH_MS = 50 * 60_000;

/** What the APNs sender is built from. */
export type ApnsOptions = {
  /** The `.p8` auth key, imported for ES256. */
  key: CryptoKey;
  keyId: string;
  teamId: string;
  clock: Clock;
  /** Base URLs (tests point both at a local server). */
  productionUrl?: string;
  sandboxUrl?: string;
  /** PEM CA certificates to trust besides the system's (tests). */
  caCerts?: string[];
  timeoutMs?: number;
};

/** APNs reasons that mean the device token is no longer valid for the topic. */
const GONE_REASONS = new Set(["Unregistered", "ExpiredToken"]);

/** Apple Push Notification service. */
export class ApnsSender implements PushSender {
  readonly kind = "apns";
  #token: { jwt: string; issuedAt: number } | null = null;
  readonly #client: Deno.HttpClient;

  constructor(private readonly options: ApnsOptions) {
    this.#client = Deno.createHttpClient({
      http1: false,
      http2: true,
      caCerts: options.caCerts,
    });
  }

  /** The current provider token, renewed after {@link TOKEN_REFRESH_MS}. */
  async providerToken(): Promise<string> {
    const now = this.options.clock.now();
    if (this.#token && now - this.#token.issuedAt < TOKEN_REFRESH_MS) return this.#token.jwt;
    const jwt = await new SignJWT({ iss: this.options.teamId })
      .setProtectedHeader({ alg: "ES256", kid: this.options.keyId })
      .setIssuedAt(Math.floor(now / 1000))
      .sign(this.options.key);
    this.#token = { jwt, issuedAt: now };
    return jwt;
  }

  async send(target: PushTarget, _wake: WakeUp): Promise<PushOutcome> {
    if (target.kind !== "apns") return { result: "failed", detail: "not an APNs target" };
    const base = target.sandbox
      ? this.options.sandboxUrl ?? APNS_SANDBOX_URL
      : this.options.productionUrl ?? APNS_PRODUCTION_URL;
    const now = this.options.clock.now();
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${base}/3/device/${encodeURIComponent(target.token)}`, {
        method: "POST",
        headers: {
          authorization: `bearer ${await this.providerToken()}`,
          "apns-push-type": "background",
          "apns-priority": "5",
          "apns-topic": target.topic,
          "apns-expiration": String(Math.floor(now / 1000) + WAKE_TTL_S),
          "content-type": "application/json",
        },
        // Apple can read this payload: it gets the bare wake-up, never the group id.
        body: JSON.stringify({ aps: { "content-available": 1 }, ...wakePayload({}) }),
        redirect: "manual",
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
        client: this.#client,
      });
      text = await readCapped(response);
    } catch (error) {
      return { result: "retry", detail: networkDetail(error) };
    }
    let reason = "";
    try {
      reason = String(JSON.parse(text).reason ?? "");
    } catch { /* not JSON, or empty on success */ }
    // Our token outlived Apple's hour (a clock step?): sign a new one for the retry.
    const renew = reason === "ExpiredProviderToken";
    if (renew) this.#token = null;
    return classifyStatus(response.status, `APNs ${response.status}${reason ? ` ${reason}` : ""}`, {
      gone: response.status === 410 || GONE_REASONS.has(reason),
      renew,
      retryAfterMs: retryAfterMs(response.headers.get("retry-after"), Date.now()),
    });
  }

  close(): void {
    this.#client.close();
  }
}

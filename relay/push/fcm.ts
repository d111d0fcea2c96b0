/**
 * @module
 * The FCM sender (Firebase Cloud Messaging HTTP v1). The relay authenticates as the project's
 * service account: it signs an RS256 JWT assertion (`iss` the account's email, `scope`
 * firebase.messaging, `aud` the token URI) and exchanges it at Google's OAuth token endpoint
 * (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`) for an access token, cached until
 * five minutes before it expires (one exchange at a time). Wake-ups are data-only messages —
 * no `notification`, so nothing is shown — at high Android priority, with the APNs background
 * headers for FCM's iOS delivery. Google can read the data, so it never carries the group id.
 */

import { readCapped } from "../base/bounded_read.ts";
import { importPKCS8, SignJWT } from "jose";
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

/** FCM's API host. */
export const FCM_API_URL = "https://fcm.googleapis.com";
/** The OAuth scope that allows sending. */
export const FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
const DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token";

/** The fields of a Google service account JSON key file that FCM needs. */
export type ServiceAccount = {
  project_id: string;
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
};

/**
 * Parses a service account JSON key file; throws an Error naming what is missing.
 *
 * @example
 * ```ts
 * const account = parseServiceAccount(await Deno.readTextFile("firebase-adminsdk.json"));
 * ```
 */
export function parseServiceAccount(json: string): ServiceAccount {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(json);
  } catch {
    throw new Error("it is not JSON");
  }
  const missing = ["project_id", "client_email", "private_key"].filter((k) =>
    typeof value?.[k] !== "string" || !value[k]
  );
  if (missing.length > 0) throw new Error(`it lacks ${missing.join(", ")}`);
  return value as unknown as ServiceAccount;
}

/** What the FCM sender is built from. */
export type FcmOptions = {
  account: ServiceAccount;
  clock: Clock;
  /** FCM's base URL (tests point it at a local server); the token URI comes from the account. */
  apiUrl?: string;
  caCerts?: string[];
  timeoutMs?: number;
};

/** Firebase Cloud Messaging, HTTP v1 API. */
export class FcmSender implements PushSender {
  readonly kind = "fcm";
  #key: Promise<CryptoKey> | null = null;
  #token: { value: string; expiresAt: number } | null = null;
  #pending: Promise<string> | null = null;
  readonly #client: Deno.HttpClient | undefined;

  constructor(private readonly options: FcmOptions) {
    this.#client = options.caCerts
      ? Deno.createHttpClient({ caCerts: options.caCerts })
      : undefined;
  }

  /** Imports the account's RSA key (checked at start so a bad key stops the relay early). */
  key(): Promise<CryptoKey> {
    this.#key ??= importPKCS8(this.options.account.private_key, "RS256");
    return this.#key;
  }

  /** A valid access token: the cached one, or a new one from the OAuth exchange. */
  accessToken(): Promise<string> {
    const now = this.options.clock.now();
    if (this.#token && this.#token.expiresAt - 5 * 60_000 > now) {
      return Promise.resolve(this.#token.value);
    }
    this.#pending ??= this.#exchange().finally(() => this.#pending = null);
    return this.#pending;
  }

  async #exchange(): Promise<string> {
    const { account, clock } = this.options;
    const tokenUri = account.token_uri ?? DEFAULT_TOKEN_URI;
    const iat = Math.floor(clock.now() / 1000);
    const assertion = await new SignJWT({ scope: FCM_SCOPE })
      .setProtectedHeader({
        alg: "RS256",
        typ: "JWT",
        ...(account.private_key_id ? { kid: account.private_key_id } : {}),
      })
      .setIssuer(account.client_email)
      .setAudience(tokenUri)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(await this.key());
    const response = await fetch(tokenUri, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
        assertion,
      }),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      client: this.#client,
    });
    const text = await readCapped(response);
    if (!response.ok) {
      throw new TokenError(response.status, text.slice(0, 200));
    }
    const body = JSON.parse(text) as { access_token?: string; expires_in?: number };
    if (!body.access_token) throw new TokenError(response.status, "no access_token in answer");
    this.#token = {
      value: body.access_token,
      expiresAt: clock.now() + (body.expires_in ?? 3600) * 1000,
    };
    return body.access_token;
  }

  async send(target: PushTarget, _wake: WakeUp): Promise<PushOutcome> {
    if (target.kind !== "fcm") return { result: "failed", detail: "not an FCM target" };
    let token: string;
    try {
      token = await this.accessToken();
    } catch (error) {
      if (error instanceof TokenError && error.status < 500 && error.status !== 429) {
        return { result: "failed", detail: `OAuth token exchange: ${error.message}` };
      }
      return { result: "retry", detail: `OAuth token exchange: ${networkDetail(error)}` };
    }
    const { account } = this.options;
    const url = `${this.options.apiUrl ?? FCM_API_URL}/v1/projects/${
      encodeURIComponent(account.project_id)
    }/messages:send`;
    const message = {
      token: target.token,
      // Google can read this payload: it gets the bare wake-up, never the group id.
      data: wakePayload({}),
      android: { priority: "high", ttl: `${WAKE_TTL_S}s`, collapse_key: "sealpost-wake" },
      apns: {
        headers: { "apns-push-type": "background", "apns-priority": "5" },
        payload: { aps: { "content-available": 1 } },
      },
    };
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ message }),
        redirect: "manual",
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
        client: this.#client,
      });
      text = await readCapped(response);
    } catch (error) {
      return { result: "retry", detail: networkDetail(error) };
    }
    if (response.ok) return { result: "sent" };
    const code = fcmErrorCode(text);
    const renew = response.status === 401;
    if (renew) this.#token = null; // revoked or expired early: exchange again on the retry
    return classifyStatus(response.status, `FCM ${response.status}${code ? ` ${code}` : ""}`, {
      gone: code === "UNREGISTERED" || response.status === 404,
      renew,
      retryAfterMs: retryAfterMs(response.headers.get("retry-after"), Date.now()),
    });
  }

  close(): void {
    this.#client?.close();
  }
}

/** The OAuth exchange was refused. */
class TokenError extends Error {
  constructor(readonly status: number, message: string) {
    super(`HTTP ${status}: ${message}`);
  }
}

/** The FCM error code of an error body (`details[].errorCode`, else `error.status`). */
function fcmErrorCode(text: string): string {
  try {
    const error = JSON.parse(text).error ?? {};
    for (const detail of error.details ?? []) {
      if (typeof detail?.errorCode === "string") return detail.errorCode;
    }
    return typeof error.status === "string" ? error.status : "";
  } catch {
    return "";
  }
}

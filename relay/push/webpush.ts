/**
 * @module
 * The Web Push sender (RFC 8030): one POST to the subscription's endpoint with `TTL` and
 * `Urgency`, the wake-up encrypted for the subscription (RFC 8291 `aes128gcm`, `encrypt.ts`)
 * and the relay's VAPID identity (RFC 8292, `vapid.ts`). The endpoint passes the address guard
 * first; redirects are not followed. UnifiedPush (`unifiedpush.ts`) sends the same request.
 */

import { readCapped } from "../base/bounded_read.ts";
import { fromBase64Url, utf8 } from "../base/encoding.ts";
import type { AddressGuard } from "./address_guard.ts";
import type { PinnedFetcher } from "./pinned_fetch.ts";
import { encryptAes128gcm } from "./encrypt.ts";
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
import type { VapidSigner } from "./vapid.ts";

/** The RFC 8030 `Topic` of every wake-up (FCM's `collapse_key` too). */
export const WAKE_TOPIC = "sealpost-wake";

/** Every encrypted wake-up is padded to this many bytes, so its length says nothing. */
export const PADDED_PAYLOAD_BYTES = 64;

/** What the Web Push request needs. */
export type WebPushOptions = {
  vapid: VapidSigner;
  guard: AddressGuard;
  /** An HTTP client (tests pass one trusting their CA). */
  client?: Deno.HttpClient;
  /** Connects to the address the guard checked (absent: a plain fetch, for tests). */
  pinned?: PinnedFetcher;
  timeoutMs?: number;
};

/**
 * POSTs one RFC 8030 push message: the encrypted `wake` when `keys` are given, else the bare
 * JSON (UnifiedPush without keys).
 */
export async function postPushMessage(
  options: WebPushOptions,
  endpoint: string,
  keys: { p256dh: string; auth: string } | null,
  wake: WakeUp,
): Promise<PushOutcome> {
  const verdict = await options.guard.check(endpoint);
  if (verdict.refusal !== null) {
    return { result: "failed", detail: `endpoint refused: ${verdict.refusal}` };
  }
  const headers: Record<string, string> = {
    ttl: String(WAKE_TTL_S),
    urgency: "normal",
    // RFC 8030 section 5.4: an undelivered wake-up is replaced by the next, not queued behind it.
    topic: WAKE_TOPIC,
    authorization: await options.vapid.authorization(endpoint),
  };
  let body: Uint8Array<ArrayBuffer>;
  if (keys) {
    const p256dh = fromBase64Url(keys.p256dh);
    const auth = fromBase64Url(keys.auth);
    if (!p256dh || !auth) return { result: "failed", detail: "stored keys are not base64url" };
    try {
      body = await encryptAes128gcm(
        utf8(JSON.stringify(wakePayload(wake))),
        new Uint8Array(p256dh),
        new Uint8Array(auth),
        { padTo: PADDED_PAYLOAD_BYTES },
      );
    } catch (error) {
      return { result: "failed", detail: `encryption: ${(error as Error).message}` };
    }
    headers["content-encoding"] = "aes128gcm";
    headers["content-type"] = "application/octet-stream";
  } else {
    // Without keys the distributor would read the group id: send the bare wake-up only.
    body = utf8(JSON.stringify(wakePayload({})));
    headers["content-type"] = "application/json";
  }
  const request: RequestInit = {
    method: "POST",
    headers,
    body,
    redirect: "manual",
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  };
  const judge = async (response: Response) => {
    const text = (await readCapped(response)).trim();
    return classifyStatus(
      response.status,
      `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ""}`,
      { retryAfterMs: retryAfterMs(response.headers.get("retry-after")) },
    );
  };
  try {
    // Connect to the address the guard checked, not to a fresh lookup (DNS rebinding).
    if (verdict.address && options.pinned) {
      return await options.pinned.fetch(endpoint, request, verdict.address, judge);
    }
    return await judge(await fetch(endpoint, { ...request, client: options.client }));
  } catch (error) {
    return { result: "retry", detail: networkDetail(error) };
  }
}

/** Web Push (browsers' push services). */
export class WebPushSender implements PushSender {
  readonly kind = "webpush";
  constructor(private readonly options: WebPushOptions) {}

  send(target: PushTarget, wake: WakeUp): Promise<PushOutcome> {
    if (target.kind !== "webpush") {
      return Promise.resolve({ result: "failed", detail: "not a Web Push target" });
    }
    return postPushMessage(this.options, target.endpoint, target, wake);
  }

  close(): void {}
}

/**
 * @module
 * The push-sender port: how the relay hands one content-free wake-up to one push service. Four
 * implementations sit behind it — Web Push (`webpush.ts`, RFC 8030/8291/8292), UnifiedPush
 * (`unifiedpush.ts`, the same request to a distributor), APNs (`apns.ts`) and FCM HTTP v1
 * (`fcm.ts`) — and no policy lives in them: which devices get a wake-up, coalescing, the minimum
 * interval, retries with backoff and the removal of gone targets sit once, above the port, in
 * `outbox.ts`. `open.ts` is the one place that picks and builds the senders from the
 * configuration.
 */

/** The push services a device can register with. */
export type PushKind = "webpush" | "unifiedpush" | "apns" | "fcm";

/** Every push kind, in display order. */
export const PUSH_KINDS: PushKind[] = ["webpush", "unifiedpush", "apns", "fcm"];

/** A device's registered push target, as stored. */
export type PushTarget =
  | { kind: "webpush"; endpoint: string; p256dh: string; auth: string }
  | { kind: "unifiedpush"; endpoint: string; p256dh?: string; auth?: string }
  | { kind: "apns"; token: string; topic: string; sandbox: boolean }
  | { kind: "fcm"; token: string };

/**
 * What a wake-up says: nothing about content. At most the group that has new messages (absent
 * when several groups do, or for the lifecycle wake-up of an idle device). Senders pass the
 * group on only inside an end-to-end-encrypted payload (Web Push, UnifiedPush with keys); Apple,
 * Google and keyless distributors get the bare wake-up.
 */
export type WakeUp = { group?: string };

/**
 * The outcome of one delivery attempt.
 * - `sent`: the push service accepted it.
 * - `gone`: the target no longer exists (404/410, APNs `Unregistered`, FCM `UNREGISTERED`);
 *   the caller removes it.
 * - `retry`: a transient failure (5xx, 429, network); try again later, not before
 *   `retryAfterMs` when the service said so.
 * - `failed`: a permanent failure for this wake-up (a refused request); the target stays.
 */
export type PushOutcome =
  | { result: "sent" }
  | { result: "gone"; detail: string }
  | { result: "retry"; detail: string; retryAfterMs?: number }
  | { result: "failed"; detail: string };

/**
 * A push sender.
 *
 * Guarantee: `send` makes at most one delivery attempt to the push service and never throws —
 * every failure, network errors included, comes back as an outcome; a `sent` outcome means the
 * service accepted the wake-up for delivery (which the service may still delay or drop). The
 * request carries no message content, only the {@link WakeUp} (encrypted end to end where the
 * service supports it: Web Push, and UnifiedPush with keys).
 */
export interface PushSender {
  readonly kind: PushKind;
  send(target: PushTarget, wake: WakeUp): Promise<PushOutcome>;
  /** Releases HTTP clients. */
  close(): void;
}

/** How long push services keep an undelivered wake-up (TTL), in seconds. */
export const WAKE_TTL_S = 86_400;

/** The JSON every sender carries (inside its service's envelope). */
export function wakePayload(wake: WakeUp): Record<string, string> {
  return wake.group ? { sealpost: "wake", group: wake.group } : { sealpost: "wake" };
}

/** Reads a `Retry-After` header (seconds or an HTTP date) as milliseconds from `now`. */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Describes a fetch failure in one line (no URLs with tokens in them). */
export function networkDetail(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `network: ${message.replace(/https?:\/\/\S+/g, "<url>").slice(0, 200)}`;
}

/** What a service said beyond its HTTP status, for {@link classifyStatus}. */
export type StatusHints = {
  /**
   * Whether the target is gone; by default a 404 or 410. APNs and FCM name it in the body
   * (`Unregistered`, `UNREGISTERED`), and an APNs 404 is a bad request path, not a gone token.
   */
  gone?: boolean;
  /** The service refused our credentials as expired: retry with fresh ones. */
  renew?: boolean;
  /** The service's `Retry-After`, in ms. */
  retryAfterMs?: number;
};

/**
 * The one retry classification of every sender's HTTP answer: 2xx `sent`; gone (see
 * {@link StatusHints}) `gone`; 429, 5xx or expired credentials `retry` (not before
 * `Retry-After`); anything else `failed`. `detail` names the answer in logs.
 */
export function classifyStatus(
  status: number,
  detail: string,
  hints: StatusHints = {},
): PushOutcome {
  if (status >= 200 && status < 300) return { result: "sent" };
  if (hints.gone ?? (status === 404 || status === 410)) return { result: "gone", detail };
  if (hints.renew || status === 429 || status >= 500) {
    return hints.retryAfterMs === undefined
      ? { result: "retry", detail }
      : { result: "retry", detail, retryAfterMs: hints.retryAfterMs };
  }
  return { result: "failed", detail };
}

/**
 * @module
 * The UnifiedPush sender: the same RFC 8030 request as Web Push, to the endpoint the device's
 * distributor (ntfy, NextPush, Sunup, …) handed the app. With `keys` (UnifiedPush's Web Push
 * mode) the wake-up is RFC 8291-encrypted; without them only the bare wake-up is sent, never a
 * group id, because the distributor could read it. Distributor endpoints are anybody's URLs, so
 * the address guard refuses private and loopback hosts unless the operator allows them.
 */

import { type PushOutcome, type PushSender, type PushTarget, type WakeUp } from "./mod.ts";
import { postPushMessage, type WebPushOptions } from "./webpush.ts";

/** UnifiedPush distributors. */
export class UnifiedPushSender implements PushSender {
  readonly kind = "unifiedpush";
  constructor(private readonly options: WebPushOptions) {}

  send(target: PushTarget, wake: WakeUp): Promise<PushOutcome> {
    if (target.kind !== "unifiedpush") {
      return Promise.resolve({ result: "failed", detail: "not a UnifiedPush target" });
    }
    const keys = target.p256dh && target.auth ? { p256dh: target.p256dh, auth: target.auth } : null;
    return postPushMessage(this.options, target.endpoint, keys, wake);
  }

  close(): void {}
}

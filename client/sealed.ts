/**
 * @module
 * Sealed group sends (issue 16): messages the relay stores and delivers **without knowing who
 * sent them**. A group holds a send capability — 32 secret bytes its members share inside their
 * encryption (an app on MLS derives it from the epoch with the exporter, so every membership
 * change rotates it) — and the relay keeps only its SHA-256. A sender presents the capability on
 * an unauthenticated request; receivers see `from: null` and must authenticate the sender inside
 * the ciphertext (MLS does: the application message is signed).
 *
 * For real sender privacy, send sealed messages over a connection that carries no token (this
 * client does not send one) and, ideally, not from the same address as the device's session.
 *
 * @example
 * ```ts
 * const cap = newSendCapability();                    // or derived from the MLS epoch
 * await setSendCapability(api, group, cap);           // any member; stores only SHA-256(cap)
 * const sealed = new SealedSender("https://relay.example.com");
 * const { seq } = await sealed.send(group, cap, { body: ciphertext, client_id: "m-1" });
 * ```
 */

import type { HttpClient } from "./http.ts";
import { readAnswer } from "./errors.ts";
import { b64url, fromB64url } from "./keys.ts";

/** A new random send capability: 32 bytes in base64url. */
export function newSendCapability(): string {
  return b64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** The verifier the relay stores for `capability`: its SHA-256 in base64url. */
export async function sendVerifier(capability: string): Promise<string> {
  const bytes = fromB64url(capability);
  if (bytes.length !== 32) throw new RangeError("A send capability is 32 bytes");
  return b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

/**
 * Sets a group's send capability (`PUT /v1/groups/:id/send_capability`); only its SHA-256 leaves
 * the device. Replacing it cuts off every holder of the previous one.
 */
export async function setSendCapability(
  api: HttpClient,
  group: string,
  capability: string,
): Promise<void> {
  await api.request("PUT", `/v1/groups/${group}/send_capability`, {
    verifier: await sendVerifier(capability),
  });
}

/** Removes a group's send capability: sealed sends are refused until one is set again. */
export async function clearSendCapability(api: HttpClient, group: string): Promise<void> {
  await api.request("DELETE", `/v1/groups/${group}/send_capability`);
}

/** What a sealed send carries besides the capability. */
export type SealedMessage = { body: string; client_id?: string; ttl_s?: number; to?: string[] };

/** The answer to a sealed send; `duplicate` when the `client_id` had been sent before. */
export type SealedSent = {
  seq: number;
  created_at: number;
  expires_at: number | null;
  duplicate: boolean;
};

/** Sends sealed messages over HTTP, with no token and no device identity. */
export class SealedSender {
  readonly baseUrl: string;
  readonly #fetch: typeof fetch;

  constructor(baseUrl: string, fetchFn?: typeof fetch) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.#fetch = fetchFn ?? ((input, init) => fetch(input, init));
  }

  /**
   * `POST /v1/sealed/groups/:id/messages`. Throws {@link SealpostError}: `404` for an unknown
   * group or a wrong (e.g. rotated-out) capability, `429` when rate limited (retry after
   * `retryAfterMs` under the same `client_id`), `413` for a body over `max_message_bytes`.
   */
  async send(group: string, capability: string, message: SealedMessage): Promise<SealedSent> {
    const response = await this.#fetch(`${this.baseUrl}/v1/sealed/groups/${group}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...message, cap: capability }),
    });
    const data = await readAnswer(response);
    return { ...data, duplicate: response.status === 200 };
  }
}

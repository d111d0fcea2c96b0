/**
 * @module
 * Reading a reply from a server someone else controls — a push service, a UnifiedPush endpoint a
 * device registered on its own server, an OAuth token endpoint — without trusting its size: at
 * most {@link OUTBOUND_BODY_BYTES} are read, the rest of the stream is cancelled (the connection
 * is dropped), and the text is decoded from what was read. Every outbound response body the
 * relay looks at goes through {@link readCapped}; bodies it does not need are cancelled unread.
 */

import { concatBytes } from "./encoding.ts";

/** The most of any outbound response body the relay reads (error texts and token answers). */
export const OUTBOUND_BODY_BYTES = 64 * 1024;

/**
 * The first `max` bytes of `response`'s body as text (invalid UTF-8 replaced); the rest is
 * never read. A body that fails mid-way yields what arrived.
 *
 * @example
 * ```ts
 * const text = await readCapped(await fetch(endpoint, { method: "POST" }));
 * ```
 */
export async function readCapped(response: Response, max = OUTBOUND_BODY_BYTES): Promise<string> {
  const body = response.body;
  if (!body) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < max) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = value.subarray(0, max - size);
      chunks.push(take);
      size += take.length;
    }
  } catch {
    // A broken or aborted body: judge by what arrived.
  } finally {
    reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(concatBytes(...chunks));
}

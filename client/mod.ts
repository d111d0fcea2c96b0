/**
 * @module
 * The Sealpost client SDK (`@sealpost/client`) for browsers, Deno and Node ≥ 20: keys and
 * identities, typed HTTP calls, and the WebSocket session with its lifecycle, reconnect and
 * resume. No dependencies: crypto is WebCrypto, transport is `fetch` and `WebSocket`.
 *
 * @example
 * ```ts
 * import { createDeviceIdentity, HttpClient, Session } from "@sealpost/client";
 * const me = await createDeviceIdentity();
 * const api = new HttpClient("http://localhost:8080");
 * await api.register(me, { name: "my laptop" });
 * const session = new Session(api, { identity: me, onMessage: (m) => console.log(m.seq) });
 * await session.ready();
 * ```
 */

export * from "./keys.ts";
export * from "./http.ts";
export * from "./session.ts";
export * from "./padding.ts";
export * from "./sealed.ts";

/** The wire protocol version this client speaks (the package's major version). */
export const PROTOCOL_VERSION = 1;

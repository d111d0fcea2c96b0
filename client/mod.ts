/**
 * @module
 * The Sealpost client SDK for browsers and Deno: keys and identities, typed HTTP calls, and
 * (with the messaging core) the WebSocket session with reconnect and resume.
 *
 * @example
 * ```ts
 * import { createDeviceIdentity, HttpClient } from "./client/mod.ts";
 * const me = await createDeviceIdentity();
 * const api = new HttpClient("http://localhost:8080");
 * await api.register(me, { name: "my laptop" });
 * ```
 */

export * from "./keys.ts";
export * from "./http.ts";
export * from "./session.ts";

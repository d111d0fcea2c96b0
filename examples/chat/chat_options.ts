/**
 * @module
 * The options a chat device opens with, what it keeps about itself, and a small timeout helper.
 */

import type { ExportedKeyPair } from "../../client/mod.ts";
import type { ChatEvent } from "./group_sync.ts";
import type { ChatStore } from "./store.ts";

/** Options of {@link ChatClient.open}. */
export type ChatOptions = {
  /** The relay's base URL (or a same-origin proxy of it). */
  url: string;
  store: ChatStore;
  /** The display name this device puts in its (encrypted) messages. */
  name: string;
  /** One-time KeyPackages kept on the relay (topped up when fewer than half are left). */
  keyPackages?: number;
  /** Post a "joined" message after joining a group by Welcome (default true). */
  announce?: boolean;
  fetchFn?: typeof fetch;
  WebSocketImpl?: typeof WebSocket;
  onEvent?(event: ChatEvent): void;
};

/** How long an invite waits for earlier joiners to confirm before giving up. */
export const JOIN_WAIT_MS = 30_000;

export type StoredIdentity = {
  account: string;
  cert: string;
  device: ExportedKeyPair;
  name: string;
};

/** `promise`, or `fallback` after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((resolve) => setTimeout(() => resolve(fallback), ms)),
  ]);
}

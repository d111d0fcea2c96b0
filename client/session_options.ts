/**
 * @module
 * The types of a session: its states and events, the shapes of the frames it hands to listeners,
 * and its options with their defaults.
 */

import type { SendRequest, StoredMessage } from "./http.ts";
import type { DeviceIdentity } from "./keys.ts";
import type { SessionError } from "./calls.ts";
import type { TokenSource } from "./tokens.ts";

/** A message as the relay delivers it (the same shape over HTTP and WebSocket). */
export type Message = StoredMessage;

/** What to send. */
export type Outgoing = SendRequest;

/** The relay's answer to a send. */
export type SentReply = {
  group: string;
  seq?: number;
  created_at?: number;
  expires_at?: number | null;
  delivered?: number;
};

/**
 * Where the session is: `connecting` (opening and authenticating), `connected`, `disconnected`
 * (waiting to reconnect, or closed by the app) and `failed` (for good: revoked, or no valid token).
 */
export type SessionState = "connecting" | "connected" | "disconnected" | "failed";

/** Why the state changed: the close code and reason, and the error for `failed`. */
export type StateDetail = { code?: number; reason?: string; error?: SessionError };

/** A membership change of a group, as the relay announces it. */
export type GroupEvent = { group: string; event: string; account: string };

/** A device of a group came online or went offline. */
export type PresenceEvent = { group: string; device: string; online: boolean };

/** An ephemeral (never stored) message. */
export type EphemeralEvent = {
  group: string;
  from: { account: string; device: string };
  body: string;
  to?: string[];
};

/**
 * An `error` event: an error frame from the relay (`code`, `message`, `ref`), a message handler
 * that threw (`handler_failed`, with `group`, `seq` and `cause`), a listener that threw
 * (`listener_failed`) or a token renewal that failed (`token_refresh_failed`).
 */
export type SessionErrorEvent = {
  code: string;
  message: string;
  ref?: unknown;
  retry_after_ms?: number;
  group?: string;
  seq?: number;
  cause?: unknown;
};

/** The session's events for `on`/`off`. */
export type SessionEvents = {
  state(state: SessionState, detail: StateDetail): void;
  message(message: Message): void | Promise<void>;
  synced(group: string, seq: number): void;
  group(event: GroupEvent): void;
  presence(event: PresenceEvent): void;
  ephemeral(event: EphemeralEvent): void;
  error(error: SessionErrorEvent): void;
};

/** Callbacks of a session; all optional, each the same as the matching `on(...)` listener. */
export type SessionHandlers = {
  onMessage?(message: Message): void | Promise<void>;
  onSynced?(group: string, seq: number): void;
  onGroupEvent?(event: GroupEvent): void;
  onPresence?(event: PresenceEvent): void;
  onEphemeral?(event: EphemeralEvent): void;
  onError?(error: SessionErrorEvent): void;
  onState?(state: SessionState, detail: StateDetail): void;
};

/** Options of a session. */
export type SessionOptions = SessionHandlers & {
  /** WebSocket URL, e.g. `ws://localhost:8080/v1/ws` (default: derived from the HTTP client). */
  url?: string;
  /** Groups to follow: `null` for all of the account's groups (default). */
  groups?: string[] | null;
  /** Starting points per group; default the device's stored cursor on the relay. */
  since?: Record<string, number>;
  presence?: boolean;
  /** Acknowledge messages after the message listeners return (default true). */
  autoAck?: boolean;
  /**
   * Automatic acks are coalesced: the highest `seq` per group goes out this many ms after the
   * first unacknowledged message (default 100). 0 acknowledges every message at once.
   */
  ackDelayMs?: number;
  /** Reconnect backoff bounds in ms (default 250 and 10,000). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * The device identity: renews the token by logging in again, and (unless `auth` is `"token"`)
   * authenticates the socket by signing the `hello` nonce.
   */
  identity?: DeviceIdentity;
  /** How the socket authenticates: `"signature"` (default with an identity) or `"token"`. */
  auth?: "signature" | "token";
  /** Supplies a fresh token (your own login flow); preferred over the identity for renewals. */
  getToken?: TokenSource;
  /** Renew the token this long before `tokenExpiresAt` (default 60,000 ms). */
  refreshMarginMs?: number;
  /** Calls made while not connected: wait for the connection (`"queue"`, default) or reject. */
  whileDisconnected?: "queue" | "reject";
  /** Default timeout of `send` in ms (default 30,000; 0 for none). */
  sendTimeoutMs?: number;
  /** Default timeout of `ping`, `presence` and `ack` in ms (default 10,000; 0 for none). */
  callTimeoutMs?: number;
  /** Give up on a connection not `ready` within this many ms (default 15,000). */
  connectTimeoutMs?: number;
  /** Ping when nothing arrived for this long (default 25,000 ms; 0 turns it off). */
  pingIntervalMs?: number;
  /** A ping unanswered this long means the connection is dead (default 10,000 ms). */
  pongTimeoutMs?: number;
  WebSocketImpl?: typeof WebSocket;
};

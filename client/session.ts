/**
 * @module
 * A live WebSocket session: authenticates, subscribes, delivers messages in `seq` order exactly
 * once per `(group, seq)` to your callback, acknowledges them, and on any disconnect reconnects
 * with backoff and resumes after the highest `seq` it has seen — so nothing is lost across
 * restarts, deploys or `4009` slow-consumer closes. Sends are retried under the same `client_id`
 * until the relay confirms them, so a retry never duplicates a message.
 */

import type { HttpClient, SendRequest, StoredMessage } from "./http.ts";
import { type DeviceIdentity, proveNonce } from "./keys.ts";

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

/** Callbacks of a session; all optional. */
export type SessionHandlers = {
  onMessage?(message: Message): void | Promise<void>;
  onSynced?(group: string, seq: number): void;
  onGroupEvent?(event: { group: string; event: string; account: string }): void;
  onPresence?(event: { group: string; device: string; online: boolean }): void;
  onEphemeral?(
    event: {
      group: string;
      from: { account: string; device: string };
      body: string;
      to?: string[];
    },
  ): void;
  onError?(error: { code: string; message: string; ref?: unknown }): void;
  onState?(
    state: "connecting" | "ready" | "closed",
    detail?: { code?: number; reason?: string },
  ): void;
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
  /** Acknowledge messages after `onMessage` returns (default true). */
  autoAck?: boolean;
  /**
   * Automatic acks are coalesced: the highest `seq` per group goes out this many ms after the
   * first unacknowledged message (default 100). 0 acknowledges every message at once.
   */
  ackDelayMs?: number;
  /** Reconnect backoff bounds in ms. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Authenticate by signature instead of token (needs the identity). */
  identity?: DeviceIdentity;
  WebSocketImpl?: typeof WebSocket;
};

type PendingSend = {
  group: string;
  frame: Record<string, unknown>;
  resolve(reply: SentReply): void;
  reject(error: Error): void;
};

let refCounter = 0;

/** Error a send gets when the relay rejects it. */
export class SendError extends Error {
  override name = "SendError";
  constructor(readonly code: string, message: string, readonly retryAfterMs?: number) {
    super(`${code}: ${message}`);
  }
}

/**
 * A session over one WebSocket at a time.
 *
 * @example
 * ```ts
 * const session = new Session(api, { onMessage: (m) => console.log(m.group, m.seq) });
 * await session.ready();
 * await session.send(group, { body: ciphertext });
 * ```
 */
export class Session {
  /** Highest `seq` seen per group: the resume point and the dedupe line. */
  readonly seen = new Map<string, number>();
  #socket: WebSocket | null = null;
  #closed = false;
  #backoff: number;
  #pending = new Map<string, PendingSend>();
  #readyWaiters: (() => void)[] = [];
  #isReady = false;
  #queue: Promise<void> = Promise.resolve();
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #groups: string[] | null;
  #presence: boolean;
  /** Number of times the session has (re)connected. */
  connects = 0;
  /** Highest handled `seq` per group not yet acknowledged. */
  #ackPending = new Map<string, number>();
  #ackTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly api: HttpClient, private readonly options: SessionOptions = {}) {
    this.#backoff = options.minBackoffMs ?? 250;
    this.#groups = options.groups === undefined ? null : options.groups;
    this.#presence = options.presence ?? false;
    for (const [group, seq] of Object.entries(options.since ?? {})) this.seen.set(group, seq);
    this.#connect();
  }

  /** Resolves once the session is authenticated (again). */
  ready(): Promise<void> {
    if (this.#isReady) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  get isReady(): boolean {
    return this.#isReady;
  }

  #url(): string {
    if (this.options.url) return this.options.url;
    return this.api.baseUrl.replace(/^http/, "ws") + "/v1/ws";
  }

  #connect(): void {
    if (this.#closed) return;
    this.options.onState?.("connecting");
    const Impl = this.options.WebSocketImpl ?? WebSocket;
    const socket = new Impl(this.#url());
    this.#socket = socket;
    socket.onmessage = (event) => {
      if (socket !== this.#socket) return;
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(String(event.data));
      } catch {
        return;
      }
      this.#onFrame(socket, frame);
    };
    socket.onclose = (event) => {
      if (socket !== this.#socket) return;
      this.#isReady = false;
      this.#socket = null;
      this.options.onState?.("closed", { code: event.code, reason: event.reason });
      if (this.#closed) return;
      const delay = this.#backoff * (0.5 + Math.random());
      this.#backoff = Math.min(this.#backoff * 2, this.options.maxBackoffMs ?? 10_000);
      this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
    };
    socket.onerror = () => {};
  }

  #onFrame(socket: WebSocket, frame: Record<string, unknown>): void {
    switch (frame.t) {
      case "hello":
        this.#auth(socket, String(frame.nonce)).catch(() => socket.close());
        return;
      case "ready": {
        this.#isReady = true;
        this.connects++;
        this.#backoff = this.options.minBackoffMs ?? 250;
        const since: Record<string, number> = {};
        for (const [group, seq] of this.seen) since[group] = seq;
        socket.send(JSON.stringify({
          t: "sub",
          groups: this.#groups,
          ...(this.seen.size > 0 ? { since } : {}),
          ...(this.#presence ? { presence: true } : {}),
        }));
        for (const pending of this.#pending.values()) socket.send(JSON.stringify(pending.frame));
        this.#flushAcks();
        this.options.onState?.("ready");
        for (const resolve of this.#readyWaiters.splice(0)) resolve();
        return;
      }
      case "msg": {
        const message = frame as unknown as Message;
        // Process in order, one at a time, so acks follow the order of handling.
        this.#queue = this.#queue.then(async () => {
          const last = this.seen.get(message.group) ?? 0;
          if (message.seq <= last) return;
          this.seen.set(message.group, message.seq);
          await this.options.onMessage?.(message);
          if (this.options.autoAck !== false) this.#queueAck(message.group, message.seq);
        }).catch(() => {});
        return;
      }
      case "synced":
        this.#queue = this.#queue.then(() => {
          const group = String(frame.group);
          const seq = Number(frame.seq);
          if ((this.seen.get(group) ?? 0) < seq) this.seen.set(group, seq);
          this.options.onSynced?.(group, seq);
        });
        return;
      case "sent": {
        const pending = this.#pending.get(String(frame.ref));
        if (!pending) return;
        this.#pending.delete(String(frame.ref));
        pending.resolve(frame as unknown as SentReply);
        return;
      }
      case "error": {
        const asked = frame.ref !== undefined
          ? this.#presenceAsks.get(String(frame.ref))
          : undefined;
        if (asked) {
          this.#presenceAsks.delete(String(frame.ref));
          asked.reject(new SendError(String(frame.code), String(frame.message)));
        }
        const pending = frame.ref !== undefined ? this.#pending.get(String(frame.ref)) : undefined;
        const retryable = frame.code === "rate_limited" || frame.code === "unavailable";
        if (pending && !retryable) {
          this.#pending.delete(String(frame.ref));
          pending.reject(new SendError(String(frame.code), String(frame.message)));
        } else if (pending) {
          const retry = Number(frame.retry_after_ms ?? 1000);
          setTimeout(() => {
            if (this.#pending.has(String(frame.ref)) && this.#socket && this.#isReady) {
              this.#socket.send(JSON.stringify(pending.frame));
            }
          }, retry);
        }
        this.options.onError?.(frame as { code: string; message: string; ref?: unknown });
        return;
      }
      case "group":
        this.options.onGroupEvent?.(frame as { group: string; event: string; account: string });
        return;
      case "presence":
        if (frame.device !== undefined) {
          this.options.onPresence?.(frame as { group: string; device: string; online: boolean });
        } else if (frame.ref !== undefined) {
          this.#presenceAsks.get(String(frame.ref))?.resolve(frame.online as string[]);
          this.#presenceAsks.delete(String(frame.ref));
        }
        return;
      case "eph":
        this.options.onEphemeral?.(frame as never);
        return;
      case "pong":
        this.#pongs.shift()?.();
        return;
    }
  }

  #presenceAsks = new Map<
    string,
    { resolve(online: string[]): void; reject(error: Error): void }
  >();
  #pongs: (() => void)[] = [];

  async #auth(socket: WebSocket, nonce: string): Promise<void> {
    if (this.options.identity) {
      const sig = await proveNonce(this.options.identity.device, nonce);
      socket.send(JSON.stringify({ t: "auth", device: this.options.identity.device.id, sig }));
      return;
    }
    if (!this.api.token) throw new Error("The HTTP client has no token: register or log in first");
    socket.send(JSON.stringify({ t: "auth", token: this.api.token }));
  }

  /**
   * Sends a message; resolves with the relay's `sent` reply once it is committed. Survives
   * reconnects: the same frame (same `client_id`) is sent again until answered.
   */
  send(group: string, message: Outgoing): Promise<SentReply> {
    const ref = `r${++refCounter}`;
    const frame = {
      t: "send",
      ref,
      group,
      ...message,
      client_id: message.client_id ?? crypto.randomUUID(),
    };
    return new Promise((resolve, reject) => {
      this.#pending.set(ref, { group, frame, resolve, reject });
      if (this.#socket && this.#isReady) this.#socket.send(JSON.stringify(frame));
    });
  }

  #queueAck(group: string, seq: number): void {
    const delay = this.options.ackDelayMs ?? 100;
    if (delay <= 0) return this.ack(group, seq);
    if ((this.#ackPending.get(group) ?? -1) < seq) this.#ackPending.set(group, seq);
    this.#ackTimer ??= setTimeout(() => {
      this.#ackTimer = undefined;
      this.#flushAcks();
    }, delay);
  }

  /** Sends the coalesced acks now (kept for the next connection while disconnected). */
  #flushAcks(): void {
    if (!this.#socket || !this.#isReady) return;
    for (const [group, seq] of this.#ackPending) this.ack(group, seq);
    this.#ackPending.clear();
  }

  /** Acknowledges `seq` in `group` (moves the stored cursor). */
  ack(group: string, seq: number): void {
    if (this.#socket && this.#isReady) this.#socket.send(JSON.stringify({ t: "ack", group, seq }));
  }

  /** Follows more groups (or all, with null). */
  subscribe(groups: string[] | null, since?: Record<string, number>): void {
    if (groups === null) this.#groups = null;
    else if (this.#groups !== null) this.#groups = [...new Set([...this.#groups, ...groups])];
    if (this.#socket && this.#isReady) {
      this.#socket.send(JSON.stringify({ t: "sub", groups, ...(since ? { since } : {}) }));
    }
  }

  /** Stops following groups. */
  unsubscribe(groups: string[]): void {
    if (this.#groups !== null) this.#groups = this.#groups.filter((g) => !groups.includes(g));
    if (this.#socket && this.#isReady) this.#socket.send(JSON.stringify({ t: "unsub", groups }));
  }

  /**
   * Asks who is online in a group. The question carries a `ref`, so a refusal (a group the
   * device is not subscribed to) rejects this call rather than leaving it unanswered.
   */
  presence(group: string): Promise<string[]> {
    const ref = `p${++refCounter}`;
    return new Promise((resolve, reject) => {
      this.#presenceAsks.set(ref, { resolve, reject });
      this.#socket?.send(JSON.stringify({ t: "presence", group, ref }));
    });
  }

  /** Round-trip check; also flushes coalesced acks, so its pong means they were received. */
  ping(): Promise<void> {
    // Pending acks go first: the relay handles frames in order, so the pong confirms them.
    this.#flushAcks();
    return new Promise((resolve) => {
      this.#pongs.push(resolve);
      this.#socket?.send(JSON.stringify({ t: "ping" }));
    });
  }

  /** Drops the current socket (the session reconnects and resumes). For tests and network changes. */
  reconnect(): void {
    this.#socket?.close();
  }

  /** Closes the session for good. */
  close(): void {
    this.#flushAcks();
    clearTimeout(this.#ackTimer);
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    this.#socket?.close(1000);
    this.#socket = null;
    for (const pending of this.#pending.values()) pending.reject(new Error("session closed"));
    this.#pending.clear();
  }
}

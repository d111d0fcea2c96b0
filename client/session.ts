/**
 * @module
 * A live WebSocket session: authenticates, subscribes, delivers messages in `seq` order exactly
 * once per `(group, seq)` to your listeners, acknowledges them, and on any disconnect reconnects
 * with jittered backoff and resumes after the highest `seq` it has handled — so nothing is lost
 * across restarts, deploys or `4009` slow-consumer closes. Sends are retried under the same
 * `client_id` until the relay confirms them, so a retry never duplicates a message.
 *
 * Its lifecycle is explicit (`connecting`, `connected`, `disconnected`, and the terminal `failed`
 * after a revocation or an unrenewable token; see `connection.ts`), and every call (`send`,
 * `ping`, `presence`, `ack`) has a timeout and takes an `AbortSignal`, so none can hang.
 */

import type { HttpClient } from "./http.ts";
import { type CallKind, type CallOptions, PendingCalls, SendError, SessionError } from "./calls.ts";
import { CLIENT_GAVE_UP, Connection } from "./connection.ts";
import { Delivery } from "./delivery.ts";
import { Emitter } from "./emitter.ts";
import type {
  EphemeralEvent,
  GroupEvent,
  Message,
  Outgoing,
  PresenceEvent,
  SentReply,
  SessionErrorEvent,
  SessionEvents,
  SessionOptions,
  SessionState,
  StateDetail,
} from "./session_options.ts";

export { type CallOptions, SendError, SessionError } from "./calls.ts";
export type { TokenSource } from "./tokens.ts";
export type * from "./session_options.ts";

let refCounter = 0;
const nextRef = (prefix: string) => `${prefix}${++refCounter}`;

/** Longest wait for an `unavailable`/`rate_limited` send before retrying it. */
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * A session over one WebSocket at a time.
 *
 * @example
 * ```ts
 * const session = new Session(api, { identity, onMessage: (m) => console.log(m.group, m.seq) });
 * session.on("state", (state) => console.log(state));
 * await session.ready();
 * await session.send(group, { body: ciphertext }, { timeoutMs: 5000 });
 * session.close();
 * ```
 */
export class Session {
  /** Number of times the session has (re)connected. */
  connects = 0;
  #options: SessionOptions;
  #events: Emitter<SessionEvents>;
  #connection: Connection;
  #calls = new PendingCalls();
  #readyWaiters = new Set<{ resolve(): void; reject(error: unknown): void }>();
  #groups: string[] | null;
  #presence: boolean;
  #delivery: Delivery;

  constructor(api: HttpClient, options: SessionOptions = {}) {
    this.#options = options;
    this.#events = new Emitter<SessionEvents>((error, event) => {
      if (event === "error") return; // an error listener that throws has nowhere to report to
      this.#emitError({ code: "listener_failed", message: String(error), cause: error });
    });
    this.#groups = options.groups === undefined ? null : options.groups;
    this.#presence = options.presence ?? false;
    this.#delivery = new Delivery({
      listeners: () => this.#events.listeners("message"),
      synced: (group, seq) => this.#events.emit("synced", group, seq),
      failed: (message, error, generation, failures) =>
        this.#handlerFailed(message, error, generation, failures),
      send: (frame) => this.#connection.send(frame),
      autoAck: options.autoAck !== false,
      ackDelayMs: options.ackDelayMs ?? 100,
    });
    for (const [group, seq] of Object.entries(options.since ?? {})) this.seen.set(group, seq);
    const handlers: [keyof SessionEvents, unknown][] = [
      ["message", options.onMessage],
      ["synced", options.onSynced],
      ["group", options.onGroupEvent],
      ["presence", options.onPresence],
      ["ephemeral", options.onEphemeral],
      ["error", options.onError],
      ["state", options.onState],
    ];
    for (const [event, fn] of handlers) if (fn) this.#events.on(event, fn as never);
    this.#connection = new Connection(api, options, {
      frame: (frame, generation) => this.#onFrame(frame, generation),
      ready: (socket) => this.#onReady(socket),
      state: (state, detail) => this.#onState(state, detail),
      tokenError: (error) =>
        this.#emitError({ code: "token_refresh_failed", message: String(error), cause: error }),
    });
    this.#connection.start();
  }

  /** Highest `seq` handled per group: the resume point and the dedupe line. */
  get seen(): Map<string, number> {
    return this.#delivery.seen;
  }

  /** Adds a listener. */
  on<K extends keyof SessionEvents>(event: K, listener: SessionEvents[K]): this {
    this.#events.on(event, listener);
    return this;
  }

  /** Removes a listener. */
  off<K extends keyof SessionEvents>(event: K, listener: SessionEvents[K]): this {
    this.#events.off(event, listener);
    return this;
  }

  /** The current state. */
  get state(): SessionState {
    return this.#connection.state;
  }

  /** True while connected and authenticated. */
  get isReady(): boolean {
    return this.#connection.state === "connected";
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#connection.closed;
  }

  /**
   * Resolves once the session is connected (again); rejects when it fails or closes first, or
   * on `options.timeoutMs`/`options.signal` (no timeout by default).
   */
  ready(options: CallOptions = {}): Promise<void> {
    if (this.isReady) return Promise.resolve();
    const ended = this.#connection.ended();
    if (ended) return Promise.reject(ended);
    const { timeoutMs, signal } = options;
    return new Promise((resolve, reject) => {
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#readyWaiters.delete(waiter);
        fn();
      };
      const waiter = {
        resolve: () => settle(resolve),
        reject: (e: unknown) => settle(() => reject(e)),
      };
      const onAbort = () => waiter.reject(signal!.reason);
      const timer = timeoutMs
        ? setTimeout(() => waiter.reject(new SessionError("timeout", "Not connected")), timeoutMs)
        : undefined;
      this.#readyWaiters.add(waiter);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Sends a message; resolves with the relay's `sent` reply once it is committed. Survives
   * reconnects and `unavailable`/`rate_limited` answers: the same frame (same `client_id`) is
   * sent again until answered or until the timeout — after which it may still have been stored,
   * and sending again with the same `client_id` is safe.
   */
  send(group: string, message: Outgoing, options: CallOptions = {}): Promise<SentReply> {
    const ref = nextRef("r");
    const frame = {
      t: "send",
      ref,
      group,
      ...message,
      client_id: message.client_id ?? crypto.randomUUID(),
    };
    return this.#call(ref, "send", [frame], options, this.#options.sendTimeoutMs ?? 30_000);
  }

  /**
   * Acknowledges `seq` in `group` (moves the stored cursor); resolves once the relay has it.
   * Automatic acks (`autoAck`) need no call.
   */
  ack(group: string, seq: number, options: CallOptions = {}): Promise<void> {
    this.#delivery.acked(group, seq);
    const ref = nextRef("a");
    // The relay handles a socket's frames in order: the pong after the ack confirms it.
    const frames = [{ t: "ack", ref, group, seq }, { t: "ping", ref }];
    return this.#call(ref, "ack", frames, options, this.#callTimeout());
  }

  /**
   * Asks who is online in a group. The question carries a `ref`, so a refusal (a group the
   * device is not subscribed to) rejects this call rather than leaving it unanswered.
   */
  presence(group: string, options: CallOptions = {}): Promise<string[]> {
    const ref = nextRef("p");
    const frames = [{ t: "presence", group, ref }];
    return this.#call(ref, "presence", frames, options, this.#callTimeout());
  }

  /**
   * Accepts this account's invitation to `group` (the WebSocket twin of
   * `HttpClient.acceptGroup`; idempotent). Until then the group's other members do not see this
   * account's device names or presence.
   */
  accept(group: string, options: CallOptions = {}): Promise<void> {
    const ref = nextRef("c");
    return this.#call(ref, "accept", [{ t: "accept", group, ref }], options, this.#callTimeout());
  }

  /** Round-trip check; also flushes coalesced acks, so its pong means they were received. */
  ping(options: CallOptions = {}): Promise<void> {
    // Pending acks go first: the relay handles frames in order, so the pong confirms them.
    this.#delivery.flushAcks();
    const ref = nextRef("g");
    return this.#call(ref, "ping", [{ t: "ping", ref }], options, this.#callTimeout());
  }

  /** Follows more groups (or all, with null). */
  subscribe(groups: string[] | null, since?: Record<string, number>): void {
    if (groups === null) this.#groups = null;
    else if (this.#groups !== null) this.#groups = [...new Set([...this.#groups, ...groups])];
    this.#connection.send({ t: "sub", groups, batch: true, ...(since ? { since } : {}) });
  }

  /** Stops following groups. */
  unsubscribe(groups: string[]): void {
    if (this.#groups !== null) this.#groups = this.#groups.filter((g) => !groups.includes(g));
    this.#connection.send({ t: "unsub", groups });
  }

  /** Drops the current socket; the session reconnects and resumes. For tests and network changes. */
  reconnect(): void {
    this.#connection.drop(CLIENT_GAVE_UP, "reconnect asked", 0);
  }

  /** Closes the session for good; calls in flight reject with `closed`. */
  close(): void {
    if (this.closed) return;
    this.#delivery.flushAcks();
    this.#delivery.stop();
    this.#connection.close();
    this.#settleAll(new SessionError("closed", "The session was closed"));
  }

  #callTimeout(): number {
    return this.#options.callTimeoutMs ?? 10_000;
  }

  #call<T>(
    ref: string,
    kind: CallKind,
    frames: Record<string, unknown>[],
    options: CallOptions,
    defaultTimeoutMs: number,
  ): Promise<T> {
    const ended = this.#connection.ended();
    if (ended) return Promise.reject(ended);
    if (!this.isReady && this.#options.whileDisconnected === "reject") {
      return Promise.reject(new SessionError("disconnected", `Cannot ${kind}: not connected`));
    }
    const promise = this.#calls.add<T>(ref, kind, frames, {
      timeoutMs: options.timeoutMs ?? defaultTimeoutMs,
      signal: options.signal,
    });
    // While disconnected the frames wait in the call table; `#onReady` sends them.
    for (const frame of frames) this.#connection.send(frame);
    return promise;
  }

  #emitError(error: SessionErrorEvent): void {
    this.#events.emit("error", error);
  }

  #settleAll(error: SessionError): void {
    this.#calls.rejectAll(error);
    for (const waiter of [...this.#readyWaiters]) waiter.reject(error);
  }

  #onState(state: SessionState, detail: StateDetail): void {
    if (state === "failed") {
      this.#delivery.stop();
      this.#settleAll(detail.error ?? new SessionError("failed", "The session has failed"));
    }
    this.#events.emit("state", state, detail);
    if (state === "connected") { for (const waiter of [...this.#readyWaiters]) waiter.resolve(); }
  }

  #onReady(socket: WebSocket): void {
    this.connects++;
    const since: Record<string, number> = {};
    for (const [group, seq] of this.seen) since[group] = seq;
    socket.send(JSON.stringify({
      t: "sub",
      groups: this.#groups,
      // Replays in `msgs` frames (feature `batched_replay`); a relay without it ignores this.
      batch: true,
      ...(this.seen.size > 0 ? { since } : {}),
      ...(this.#presence ? { presence: true } : {}),
    }));
    for (const call of this.#calls.all()) {
      for (const frame of call.frames) socket.send(JSON.stringify(frame));
    }
    // Coalesced acks go once the state is `connected` (they need `send`): a microtask later.
    queueMicrotask(() => this.#delivery.flushAcks());
  }

  #onFrame(frame: Record<string, unknown>, generation: number): void {
    switch (frame.t) {
      case "msg":
        return this.#delivery.message(frame as unknown as Message, generation);
      case "msgs": {
        // A batched replay (`sub` with `batch: true`): each message as if it came in its own frame.
        const messages = Array.isArray(frame.messages) ? frame.messages as Message[] : [];
        for (const message of messages) this.#delivery.message(message, generation);
        return;
      }
      case "synced":
        return this.#delivery.synced(String(frame.group), Number(frame.seq), generation);
      case "sent":
        this.#calls.resolve(String(frame.ref), frame as unknown as SentReply);
        return;
      case "error":
        return this.#onError(frame);
      case "group":
        return this.#events.emit("group", frame as unknown as GroupEvent);
      case "presence":
        if (frame.device !== undefined) {
          this.#events.emit("presence", frame as unknown as PresenceEvent);
        } else if (frame.ref !== undefined) {
          this.#calls.resolve(String(frame.ref), frame.online as string[]);
        }
        return;
      case "eph":
        return this.#events.emit("ephemeral", frame as unknown as EphemeralEvent);
      case "pong":
      case "accepted":
        if (frame.ref !== undefined) this.#calls.resolve(String(frame.ref), undefined);
        return;
    }
  }

  #onError(frame: Record<string, unknown>): void {
    const ref = frame.ref !== undefined ? String(frame.ref) : undefined;
    const call = ref !== undefined ? this.#calls.get(ref) : undefined;
    const code = String(frame.code);
    const retryAfter = frame.retry_after_ms === undefined
      ? undefined
      : Number(frame.retry_after_ms);
    if (ref !== undefined && call) {
      if (call.kind === "send" && (code === "rate_limited" || code === "unavailable")) {
        // Back off as the relay asks and send the same frame (same client_id) again.
        const wait = Math.min(Math.max(retryAfter ?? 1000, 0), MAX_RETRY_AFTER_MS);
        this.#calls.later(ref, wait, () => this.#connection.send(call.frames[0]));
      } else {
        this.#calls.reject(ref, new SendError(code, String(frame.message), retryAfter));
      }
    }
    this.#emitError(frame as unknown as SessionErrorEvent);
  }

  /**
   * A message listener threw: the message is not marked seen; resume from `seen` on a new
   * connection, so the relay delivers it again (after a growing pause, should it keep failing).
   */
  #handlerFailed(message: Message, error: unknown, generation: number, failures: number): void {
    this.#emitError({
      code: "handler_failed",
      message: `A message handler threw: ${error}`,
      group: message.group,
      seq: message.seq,
      cause: error,
    });
    if (generation !== this.#connection.generation) return;
    const base = this.#options.minBackoffMs ?? 250;
    const max = this.#options.maxBackoffMs ?? 10_000;
    const delay = Math.min(max, base * 2 ** Math.min(failures, 16));
    this.#connection.drop(CLIENT_GAVE_UP, "message handler failed", delay);
  }
}

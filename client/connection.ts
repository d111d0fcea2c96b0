/**
 * @module
 * One WebSocket at a time for a session: opens it, answers `hello` with the device's signature or
 * its token, and on any close reconnects with jittered backoff. It owns the lifecycle states —
 * `connecting`, `connected`, `disconnected`, and the terminal `failed` on `4003` (revoked) or on a
 * `4001` that a renewed token does not cure. A connection not `ready` in time, or one that stops
 * answering pings, is given up on without waiting for the network to say so; a browser coming back
 * online or to the foreground reconnects at once.
 */

import type { HttpClient } from "./http.ts";
import { proveNonce } from "./keys.ts";
import { SessionError } from "./calls.ts";
import { Liveness } from "./liveness.ts";
import { isAuthRefusal, TokenKeeper } from "./tokens.ts";
import type { SessionOptions, SessionState, StateDetail } from "./session_options.ts";

/** Close codes from the relay that end the session or need a new token. */
const REVOKED = 4003;
const UNAUTHENTICATED = 4001;
/** The close code the session itself uses for a connection it gives up on. */
export const CLIENT_GAVE_UP = 4000;

/** What a connection tells its session. */
export type ConnectionHost = {
  /** A frame other than `hello`/`ready`, from connection number `generation`. */
  frame(frame: Record<string, unknown>, generation: number): void;
  /** Authenticated on `socket`: subscribe and re-send (the state becomes `connected` next). */
  ready(socket: WebSocket): void;
  state(state: SessionState, detail: StateDetail): void;
  tokenError(error: unknown): void;
};

let pingCounter = 0;

/**
 * Browsers and their workers report the network (`navigator.onLine`, `online` events); Deno and
 * Node do not, and a process with thousands of sessions should not keep a listener for each.
 */
const IN_BROWSER =
  typeof (globalThis as { navigator?: { onLine?: unknown } }).navigator?.onLine === "boolean";

/** The socket, its states and the reconnect loop. */
export class Connection {
  #api: HttpClient;
  #options: SessionOptions;
  #host: ConnectionHost;
  #state: SessionState = "disconnected";
  #closed = false;
  #socket: WebSocket | null = null;
  #socketToken: string | null = null;
  #generation = 0;
  #backoff: number;
  #refreshedSinceReady = false;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #tokens: TokenKeeper;
  #liveness: Liveness;
  #wake = () => this.#onWake();

  constructor(api: HttpClient, options: SessionOptions, host: ConnectionHost) {
    if (!(options.WebSocketImpl ?? globalThis.WebSocket)) {
      throw new Error(
        "Cannot open a session: no WebSocket here (on Node 20 pass WebSocketImpl, or run node with --experimental-websocket)",
      );
    }
    this.#api = api;
    this.#options = options;
    this.#host = host;
    this.#backoff = options.minBackoffMs ?? 250;
    this.#tokens = new TokenKeeper(api, {
      identity: options.identity,
      getToken: options.getToken,
      marginMs: options.refreshMarginMs ?? 60_000,
      onError: (error) => host.tokenError(error),
    });
    this.#liveness = new Liveness({
      intervalMs: options.pingIntervalMs ?? 25_000,
      timeoutMs: options.pongTimeoutMs ?? 10_000,
      ping: () => this.#socket?.send(JSON.stringify({ t: "ping", ref: `l${++pingCounter}` })),
      dead: () => this.drop(CLIENT_GAVE_UP, "no answer to ping"),
    });
  }

  /** Opens the first socket and starts watching the token and the browser. */
  start(): void {
    if (IN_BROWSER) {
      globalThis.addEventListener("online", this.#wake);
      (globalThis as { document?: EventTarget }).document?.addEventListener(
        "visibilitychange",
        this.#wake,
      );
    }
    this.#tokens.schedule();
    this.#connect();
  }

  get state(): SessionState {
    return this.#state;
  }

  /** Number of the current socket (frames of older ones are ignored). */
  get generation(): number {
    return this.#generation;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Why no call can be made any more (closed or failed), or null. */
  ended(): SessionError | null {
    if (this.#closed) return new SessionError("closed", "The session was closed");
    if (this.#state === "failed") return new SessionError("failed", "The session has failed");
    return null;
  }

  /** Sends a frame when connected; false otherwise. */
  send(frame: Record<string, unknown>): boolean {
    if (this.#state !== "connected" || !this.#socket) return false;
    this.#socket.send(JSON.stringify(frame));
    return true;
  }

  /** Gives up on the current socket now (without waiting for its close handshake). */
  drop(code: number, reason: string, delayMs?: number): void {
    const socket = this.#socket;
    if (!socket) return;
    try {
      socket.close(code, reason);
    } catch { /* already closing */ }
    this.#onClose(code, reason, delayMs);
  }

  /** Closes for good: state `disconnected` with code 1000 (unless it had failed). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop();
    if (this.#state !== "failed") this.#setState("disconnected", { code: 1000, reason: "closed" });
  }

  #url(): string {
    if (this.#options.url) return this.#options.url;
    return this.#api.baseUrl.replace(/^http/, "ws") + "/v1/ws";
  }

  #setState(state: SessionState, detail: StateDetail = {}): void {
    if (this.#state === state && state !== "disconnected") return;
    this.#state = state;
    this.#host.state(state, detail);
  }

  #connect(): void {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    if (this.ended()) return;
    this.#setState("connecting");
    const Impl = this.#options.WebSocketImpl ?? WebSocket;
    let socket: WebSocket;
    try {
      socket = new Impl(this.#url());
    } catch (error) {
      return this.#fail({ reason: String(error) }, new SessionError("failed", String(error)));
    }
    const generation = ++this.#generation;
    this.#socket = socket;
    this.#socketToken = null;
    this.#connectTimer = setTimeout(() => {
      if (socket === this.#socket) this.drop(CLIENT_GAVE_UP, "not ready in time");
    }, this.#options.connectTimeoutMs ?? 15_000);
    socket.onmessage = (event) => {
      if (socket !== this.#socket) return;
      this.#liveness.alive();
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(String(event.data));
      } catch {
        return;
      }
      if (typeof frame !== "object" || frame === null) return; // not a frame: ignored
      if (frame.t === "hello") return this.#hello(socket, String(frame.nonce));
      if (frame.t === "ready") return this.#ready(socket);
      this.#host.frame(frame, generation);
    };
    socket.onclose = (event) => {
      if (socket === this.#socket) this.#onClose(event.code, event.reason);
    };
    socket.onerror = () => {};
  }

  #ready(socket: WebSocket): void {
    clearTimeout(this.#connectTimer);
    this.#backoff = this.#options.minBackoffMs ?? 250;
    this.#refreshedSinceReady = false;
    this.#host.ready(socket);
    this.#setState("connected");
    this.#liveness.start();
  }

  #onClose(code: number, reason: string, delayMs?: number): void {
    this.#socket = null;
    clearTimeout(this.#connectTimer);
    this.#liveness.stop();
    if (this.ended()) return;
    if (code === REVOKED) {
      return this.#fail({ code, reason }, new SessionError("device_revoked", reason || "revoked"));
    }
    this.#setState("disconnected", { code, reason });
    if (code === UNAUTHENTICATED) return void this.#renewAndConnect(code, reason);
    this.#scheduleReconnect(delayMs);
  }

  /** After a `4001`: a new token and one more try; a second `4001` before `ready` is final. */
  async #renewAndConnect(code: number, reason: string): Promise<void> {
    const byToken = this.#socketToken !== null;
    if (byToken && this.#api.token && this.#api.token !== this.#socketToken) {
      return this.#connect(); // already renewed since this socket authenticated
    }
    if (!this.#tokens.canRefresh || this.#refreshedSinceReady) {
      return this.#fail(
        { code, reason },
        new SessionError("unauthenticated", reason || "The relay refused the credentials"),
      );
    }
    try {
      this.#refreshedSinceReady = true;
      await this.#tokens.refresh();
    } catch (error) {
      return this.#refreshFailed(error, { code, reason });
    }
    if (!this.ended()) this.#connect();
  }

  #refreshFailed(error: unknown, detail: StateDetail): void {
    this.#host.tokenError(error);
    if (isAuthRefusal(error)) {
      const e = error as { code: string; message: string };
      return this.#fail(detail, new SessionError(e.code, e.message));
    }
    // The relay could not be reached: not the token's fault; try again later.
    this.#refreshedSinceReady = false;
    if (this.#state !== "disconnected") this.#setState("disconnected", detail);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(delayMs?: number): void {
    if (this.ended()) return;
    const delay = delayMs ?? this.#backoff * (0.5 + Math.random());
    if (delayMs === undefined) {
      this.#backoff = Math.min(this.#backoff * 2, this.#options.maxBackoffMs ?? 10_000);
    }
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  #fail(detail: StateDetail, error: SessionError): void {
    this.#stop();
    this.#setState("failed", { ...detail, error });
  }

  #stop(): void {
    const socket = this.#socket;
    this.#socket = null;
    try {
      socket?.close(1000);
    } catch { /* already closing */ }
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#connectTimer);
    this.#tokens.stop();
    this.#liveness.stop();
    if (IN_BROWSER) {
      globalThis.removeEventListener("online", this.#wake);
      (globalThis as { document?: EventTarget }).document?.removeEventListener(
        "visibilitychange",
        this.#wake,
      );
    }
  }

  /** The network or the page came back: reconnect now, or check the connection is alive. */
  #onWake(): void {
    const doc = (globalThis as { document?: { visibilityState?: string } }).document;
    if (doc?.visibilityState === "hidden" || this.ended()) return;
    if (this.#state === "connected") return this.#liveness.check();
    if (this.#state === "disconnected" && this.#reconnectTimer !== undefined) {
      this.#backoff = this.#options.minBackoffMs ?? 250;
      this.#connect();
    }
  }

  /** Answers `hello`: a signature over its nonce, or the (renewed if expired) token. */
  #hello(socket: WebSocket, nonce: string): void {
    this.#authenticate(socket, nonce).catch((error) => {
      if (socket !== this.#socket) return;
      if (error instanceof SessionError) {
        return this.#fail({}, error);
      }
      if (isAuthRefusal(error)) {
        this.#socket = null;
        clearTimeout(this.#connectTimer);
        try {
          socket.close(1000);
        } catch { /* closing */ }
        return this.#refreshFailed(error, {});
      }
      this.#host.tokenError(error);
      this.drop(CLIENT_GAVE_UP, "authentication failed");
    });
  }

  async #authenticate(socket: WebSocket, nonce: string): Promise<void> {
    const identity = this.#options.identity;
    if (identity && this.#options.auth !== "token") {
      const sig = await proveNonce(identity.device, nonce);
      if (socket === this.#socket) {
        socket.send(JSON.stringify({ t: "auth", device: identity.device.id, sig }));
      }
      return;
    }
    if (this.#tokens.expired && this.#tokens.canRefresh) await this.#tokens.refresh();
    if (!this.#api.token) {
      throw new SessionError(
        "unauthenticated",
        "The HTTP client has no token: register or log in first",
      );
    }
    if (socket !== this.#socket) return;
    this.#socketToken = this.#api.token;
    socket.send(JSON.stringify({ t: "auth", token: this.#api.token }));
  }
}

/**
 * @module
 * One WebSocket connection from upgrade to close: `hello` with a fresh nonce, the `auth` frame
 * within 10 s (token, or signature over the nonce), `ready`, then frames — `sub`, `unsub`,
 * `send`, `ack`, `presence`, `ping` (what each does is `frames.ts`). A bad frame gets an `error`
 * frame echoing its `ref` and the connection stays open; a frame larger than the limit closes
 * with `1009`; a device that keeps sending while rate limited is closed with `4008`; a socket
 * authenticated with a token is closed with `4001` when the token expires (by the hub). Every
 * close code comes from the error table (`errors.ts`).
 */

import { authenticateSignature, authenticateTokenUntil, type Principal } from "./authenticate.ts";
import { randomId } from "./base/encoding.ts";
import { closeCode, type CloseReason, describeError, RelayError } from "./errors.ts";
import { membershipOf } from "./accounts/groups.ts";
import type { Connection } from "./connection.ts";
import { type FrameDeps, handleFrame } from "./frames.ts";
import { publicLimits } from "./config/limits.ts";
import { AuthFrame, ClientFrame, describeIssue, type Ref, type ServerFrame } from "./protocol.ts";
import { PROTOCOL_VERSION, VERSION } from "./base/version.ts";
import { withSpan } from "./base/trace.ts";
import { jsonProblem } from "./base/json.ts";

/** Largest frame accepted before `auth` (an auth frame is a few hundred bytes). */
export const AUTH_FRAME_BYTES = 4096;

/** Rate-limited sends per minute a connection may keep making before it is closed 4008. */
const ABUSE_LIMIT = 60;

/** The frame types a client may send after `auth` (an unknown one is named in the error). */
const FRAME_TYPES = new Set(["sub", "unsub", "send", "ack", "presence", "ping", "accept"]);

/** What a connection needs. */
export type ConnectDeps = FrameDeps & {
  /** Every open socket, authenticated or not, so a drain can close them all. */
  sockets: Set<WebSocket>;
};

let connectionCounter = 0;

/**
 * A frame's `ref` if it has the documented shape (a string of at most 128 characters, or a
 * number), else undefined. Replies echo only such a ref: an arbitrary one — an object nested
 * 20,000 deep, say — could not even be serialized back and would throw out of the socket handler.
 */
export function echoableRef(ref: unknown): Ref | undefined {
  if (typeof ref === "number") return ref;
  if (typeof ref === "string" && ref.length <= 128) return ref;
  return undefined;
}

/** Largest text frame accepted: a maximal body in base64url plus room for the other fields. */
export function maxFrameBytes(maxMessageBytes: number): number {
  return Math.ceil(maxMessageBytes * 4 / 3) + 64 * 1024;
}

/** A text frame read by {@link readFrame}: its JSON, or why it was refused. */
export type FrameRead =
  | { json: unknown }
  | { tooLarge: true }
  | { refused: string; ref?: Ref };

/**
 * The bounds every WebSocket frame passes before its schema, on `/v1/ws` and `/v1/sealed/ws`
 * alike: text only, at most `limit` characters (bigger closes the socket `1009`), valid JSON
 * within the depth and width bounds of `base/json.ts`. A refusal carries the frame's `ref` when
 * it is echoable.
 */
export function readFrame(data: unknown, limit: number): FrameRead {
  if (typeof data !== "string") return { refused: "Only text frames are accepted" };
  if (data.length > limit) return { tooLarge: true };
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return { refused: "The frame is not valid JSON" };
  }
  const problem = jsonProblem(json);
  if (problem) {
    return {
      refused: `The frame is out of bounds: ${problem}`,
      ref: echoableRef((json as { ref?: unknown })?.ref),
    };
  }
  return { json };
}

/**
 * Runs the protocol on an upgraded socket.
 *
 * @example
 * ```ts
 * const { socket, response } = Deno.upgradeWebSocket(request);
 * handleSocket(deps, socket);
 * return response;
 * ```
 */
export function handleSocket(deps: ConnectDeps, socket: WebSocket, settled?: () => void): void {
  new SocketSession(deps, socket, settled).attach();
}

/** The state of one socket: before `auth` (no connection yet), then authenticated. */
class SocketSession {
  readonly #nonce = randomId(32);
  readonly #id = `ws-${Date.now().toString(36)}-${(++connectionCounter).toString(36)}`;
  readonly #frameLimit: number;
  #conn: Connection | null = null;
  #authenticating = false;
  #closed = false;
  #rateLimited: number[] = [];
  #authTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly deps: ConnectDeps,
    private readonly socket: WebSocket,
    /** Called once, when the socket authenticates or closes (it is no longer pending). */
    private settled?: () => void,
  ) {
    this.#frameLimit = maxFrameBytes(deps.config.maxMessageBytes);
  }

  #settle(): void {
    const settled = this.settled;
    this.settled = undefined;
    settled?.();
  }

  /** Step 1: listen to the socket; `hello` on open; close if no `auth` comes in time. */
  attach(): void {
    const { deps, socket } = this;
    this.#authTimer = setTimeout(
      () => this.#close("unauthenticated", "not authenticated in time"),
      deps.config.authTimeoutMs,
    );
    deps.sockets.add(socket);
    socket.onopen = () => this.#hello();
    socket.onclose = () => {
      deps.sockets.delete(socket);
      this.#closed = true;
      this.#settle();
      clearTimeout(this.#authTimer);
      if (this.#conn) deps.hub.remove(this.#conn);
    };
    socket.onerror = () => {};
    socket.onmessage = (event) => this.#onMessage(event.data);
  }

  #hello(): void {
    this.#send({
      t: "hello",
      nonce: this.#nonce,
      version: PROTOCOL_VERSION,
      server: VERSION,
      limits: publicLimits(this.deps.config, this.deps.settings.current),
    });
  }

  /** Step 2: every frame is bounded and parsed; the first is `auth`, the rest go to `frames.ts`. */
  #onMessage(data: unknown): void {
    if (this.#closed) return;
    const json = this.#read(data);
    if (json === undefined) return;
    const conn = this.#conn;
    if (!conn) {
      if (this.#authenticating) return;
      this.#authenticating = true;
      this.#authenticate(json).catch((error) => this.#authFailed(error));
      return;
    }
    this.deps.activity.touch(conn.device);
    this.#onFrame(conn, json);
  }

  /** A frame's JSON, or undefined when it was refused (error frame, or close before auth). */
  #read(data: unknown): unknown {
    // Before auth only a small `auth` frame is expected: anything bigger is refused at once.
    const read = readFrame(data, this.#conn ? this.#frameLimit : AUTH_FRAME_BYTES);
    if ("json" in read) return read.json;
    if ("tooLarge" in read) this.#close("too_large", "frame too large");
    else this.#refuse(read.refused, read.ref);
    return undefined;
  }

  /** A malformed frame: an error frame once authenticated, a close before. */
  #refuse(message: string, ref?: Ref): void {
    if (!this.#conn) this.#close("unauthenticated", "expected an auth frame");
    else this.#replyError(new RelayError("invalid_request", message), ref);
  }

  /** Step 3: `auth` → the principal → the hub's connection → `ready`. */
  async #authenticate(json: unknown): Promise<void> {
    const parsed = AuthFrame.safeParse(json);
    if (!parsed.success) return this.#close("unauthenticated", "expected an auth frame");
    const frame = parsed.data;
    let principal: Principal;
    // A token's socket lives until the token expires; a signature's until it closes.
    let expiresAt: number | undefined;
    try {
      principal = await withSpan(
        "sealpost.ws.auth",
        { "sealpost.auth": "token" in frame ? "token" : "signature" },
        async () => {
          if (!("token" in frame)) {
            return await authenticateSignature(this.deps, frame.device, frame.sig, this.#nonce);
          }
          const proven = await authenticateTokenUntil(this.deps, frame.token);
          expiresAt = proven.expiresAt;
          return proven.principal;
        },
      );
    } catch (error) {
      if (!(error instanceof RelayError)) throw error;
      // unauthenticated and unknown_device close 4001, device_revoked 4003 (the error table).
      this.#replyError(error);
      return this.#close(error.code, error.message);
    }
    if (this.#closed) return;
    const { groups, invited } = await membershipOf(this.deps, principal.account);
    if (this.#closed) return;
    const added = this.deps.hub.add(
      principal.account,
      principal.device,
      this.socket,
      groups,
      invited,
      expiresAt,
    );
    if (!added) {
      this.#replyError(new RelayError("rate_limited", "Too many connections for this device"));
      return this.#close("rate_limited", "too many connections for this device");
    }
    this.#conn = added;
    clearTimeout(this.#authTimer);
    this.#settle();
    added.sendJson({ t: "ready", account: principal.account, device: principal.device });
  }

  /** The database failed during `auth` (close 1013, try again later), or something else (1011). */
  #authFailed(thrown: unknown): void {
    const { error, unexpected } = describeError(thrown);
    if (unexpected) this.deps.log.error("websocket auth failed unexpectedly", { error: thrown });
    this.#close(
      error.code,
      unexpected ? "authentication failed" : "database unreachable: try again later",
    );
  }

  /** Step 4: a client frame, validated, then run; a failure becomes an error frame. */
  #onFrame(conn: Connection, json: unknown): void {
    const ref = echoableRef((json as { ref?: unknown })?.ref);
    const parsed = ClientFrame.safeParse(json);
    if (!parsed.success) {
      const t = (json as { t?: unknown })?.t;
      const message = FRAME_TYPES.has(t as string)
        ? describeIssue(parsed.error, json)
        : `Unknown frame type ${JSON.stringify(t ?? null)}`;
      return this.#replyError(new RelayError("invalid_request", message), ref);
    }
    const replyError = (error: RelayError, ref?: Ref) => this.#replyError(error, ref);
    handleFrame(this.deps, conn, parsed.data, replyError).catch((thrown) => {
      const { error, unexpected } = describeError(thrown);
      if (error.code === "rate_limited") this.#noteRateLimited();
      if (unexpected) {
        this.deps.log.error("websocket frame failed", {
          error: thrown,
          device: conn.device,
          t: parsed.data.t,
        });
      }
      this.#replyError(error, ref);
    });
  }

  #noteRateLimited(): void {
    const now = this.deps.clock.now();
    this.#rateLimited = this.#rateLimited.filter((t) => now - t < 60_000);
    this.#rateLimited.push(now);
    if (this.#rateLimited.length > ABUSE_LIMIT) this.#close("rate_limited", "rate limit abuse");
  }

  #send(frame: ServerFrame): void {
    if (this.#conn) this.#conn.sendJson(frame);
    else if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  #replyError(error: RelayError, ref?: Ref): void {
    // One line per frame error, with the connection's id; never the frame's content.
    this.deps.log.info("frame error", {
      conn: this.#id,
      device: this.#conn?.device,
      code: error.code,
      message: error.message,
    });
    const frame: ServerFrame = { t: "error", code: error.code, message: error.message };
    if (ref !== undefined) frame.ref = ref;
    if (error.retryAfterMs !== undefined) frame.retry_after_ms = error.retryAfterMs;
    this.#send(frame);
  }

  /** Closes the socket with the close code of `reason` in the error table. */
  #close(reason: CloseReason, message: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#settle();
    if (this.#conn) this.deps.hub.closeConnection(this.#conn, reason, message);
    else {
      try {
        this.socket.close(closeCode(reason), message);
      } catch { /* already closing */ }
    }
  }
}

/**
 * @module
 * One WebSocket connection from upgrade to close: `hello` with a fresh nonce, the `auth` frame
 * within 10 s (token, or signature over the nonce), `ready`, then frames — `sub`, `unsub`,
 * `send`, `ack`, `presence`, `ping`. A bad frame gets an `error` frame echoing its `ref` and the
 * connection stays open; a frame larger than the limit closes with `1009`; a device that keeps
 * sending while rate limited is closed with `4008`.
 */

import { authenticateSignature, authenticateToken, type Principal } from "./authenticate.ts";
import type { CursorStore } from "./ack.ts";
import { randomId } from "./base/encoding.ts";
import { CLOSE, isUnavailable, RelayError } from "./errors.ts";
import { groupsOf } from "./accounts/groups.ts";
import type { Connection, Hub } from "./hub.ts";
import type { InstanceRegistry } from "./cluster/instances.ts";
import { publicLimits } from "./config/limits.ts";
import { AuthFrame, ClientFrame, describeIssue } from "./protocol.ts";
import { send, type SendDeps } from "./send.ts";
import { PROTOCOL_VERSION, VERSION } from "./base/version.ts";
import { withSpan } from "./base/trace.ts";

/** Rate-limited sends per minute a connection may keep making before it is closed 4008. */
const ABUSE_LIMIT = 60;

/** What a connection needs. */
export type ConnectDeps = SendDeps & {
  hub: Hub;
  cursors: CursorStore;
  registry: InstanceRegistry;
  /** Every open socket, authenticated or not, so a drain can close them all. */
  sockets: Set<WebSocket>;
};

let connectionCounter = 0;

/** Largest text frame accepted: a maximal body in base64url plus room for the other fields. */
export function maxFrameBytes(maxMessageBytes: number): number {
  return Math.ceil(maxMessageBytes * 4 / 3) + 64 * 1024;
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
export function handleSocket(deps: ConnectDeps, socket: WebSocket): void {
  const nonce = randomId(32);
  const frameLimit = maxFrameBytes(deps.config.maxMessageBytes);
  let conn: Connection | null = null;
  let authenticating = false;
  let closed = false;
  let rateLimited: number[] = [];
  const log = deps.log;

  const sendFrame = (frame: Record<string, unknown>) => {
    if (conn) conn.sendJson(frame);
    else if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  };
  const connId = `ws-${Date.now().toString(36)}-${(++connectionCounter).toString(36)}`;
  const errorFrame = (error: RelayError, ref?: unknown) => {
    // One line per frame error, with the connection's id; never the frame's content.
    log.info("frame error", {
      conn: connId,
      device: conn?.device,
      code: error.code,
      message: error.message,
    });
    const frame: Record<string, unknown> = { t: "error", code: error.code, message: error.message };
    if (ref !== undefined) frame.ref = ref;
    if (error.retryAfterMs !== undefined) frame.retry_after_ms = error.retryAfterMs;
    sendFrame(frame);
  };
  const closeWith = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    if (conn) deps.hub.closeConnection(conn, code, reason);
    else {
      try {
        socket.close(code, reason);
      } catch { /* already closing */ }
    }
  };

  const authTimer = setTimeout(
    () => closeWith(CLOSE.unauthenticated, "not authenticated in time"),
    deps.config.authTimeoutMs,
  );

  deps.sockets.add(socket);
  socket.onopen = () => {
    socket.send(JSON.stringify({
      t: "hello",
      nonce,
      version: PROTOCOL_VERSION,
      server: VERSION,
      limits: publicLimits(deps.config, deps.settings.current),
    }));
  };

  socket.onclose = () => {
    deps.sockets.delete(socket);
    closed = true;
    clearTimeout(authTimer);
    if (conn) deps.hub.remove(conn);
  };
  socket.onerror = () => {};

  socket.onmessage = (event) => {
    if (closed) return;
    if (typeof event.data !== "string") {
      if (!conn) return closeWith(CLOSE.unauthenticated, "expected an auth frame");
      return errorFrame(new RelayError("invalid_request", "Only text frames are accepted"));
    }
    if (event.data.length > frameLimit) return closeWith(CLOSE.tooLarge, "frame too large");
    let json: unknown;
    try {
      json = JSON.parse(event.data);
    } catch {
      if (!conn) return closeWith(CLOSE.unauthenticated, "expected an auth frame");
      return errorFrame(new RelayError("invalid_request", "The frame is not valid JSON"));
    }
    if (!conn) {
      if (authenticating) return;
      authenticating = true;
      authenticate(json).catch((error) => {
        if (isUnavailable(error)) return closeWith(1013, "database unreachable: try again later");
        log.error("websocket auth failed unexpectedly", { error });
        closeWith(1011, "authentication failed");
      });
      return;
    }
    deps.activity.touch(conn.device);
    const ref = (json as { ref?: unknown })?.ref;
    const parsed = ClientFrame.safeParse(json);
    if (!parsed.success) {
      const t = (json as { t?: unknown })?.t;
      const known = ["sub", "unsub", "send", "ack", "presence", "ping"].includes(t as string);
      const message = known
        ? describeIssue(parsed.error)
        : `Unknown frame type ${JSON.stringify(t ?? null)}`;
      return errorFrame(new RelayError("invalid_request", message), ref);
    }
    handleFrame(conn, parsed.data).catch((error) => {
      if (error instanceof RelayError) {
        if (error.code === "rate_limited") noteRateLimited();
        return errorFrame(error, ref);
      }
      if (isUnavailable(error)) {
        return errorFrame(
          new RelayError("unavailable", "The database is unreachable; retry shortly", 1000),
          ref,
        );
      }
      log.error("websocket frame failed", { error, device: conn?.device, t: parsed.data.t });
      errorFrame(new RelayError("internal"), ref);
    });
  };

  function noteRateLimited(): void {
    const now = deps.clock.now();
    rateLimited = rateLimited.filter((t) => now - t < 60_000);
    rateLimited.push(now);
    if (rateLimited.length > ABUSE_LIMIT) closeWith(CLOSE.rateLimitAbuse, "rate limit abuse");
  }

  async function authenticate(json: unknown): Promise<void> {
    const parsed = AuthFrame.safeParse(json);
    if (!parsed.success) return closeWith(CLOSE.unauthenticated, "expected an auth frame");
    let principal: Principal;
    try {
      const frame = parsed.data;
      principal = await withSpan(
        "sealpost.ws.auth",
        { "sealpost.auth": "token" in frame ? "token" : "signature" },
        () =>
          "token" in frame
            ? authenticateToken(deps, frame.token)
            : authenticateSignature(deps, frame.device, frame.sig, nonce),
      );
    } catch (error) {
      if (error instanceof RelayError) {
        errorFrame(error);
        const code = error.code === "device_revoked" ? CLOSE.revoked : CLOSE.unauthenticated;
        return closeWith(code, error.message);
      }
      throw error;
    }
    if (closed) return;
    const groups = await groupsOf(deps, principal.account);
    if (closed) return;
    const added = deps.hub.add(principal.account, principal.device, socket, groups);
    if (!added) {
      errorFrame(new RelayError("rate_limited", "Too many connections for this device"));
      return closeWith(CLOSE.rateLimitAbuse, "too many connections for this device");
    }
    conn = added;
    clearTimeout(authTimer);
    conn.sendJson({ t: "ready", account: principal.account, device: principal.device });
  }

  async function handleFrame(conn: Connection, frame: ClientFrame): Promise<void> {
    switch (frame.t) {
      case "ping":
        conn.sendJson(frame.ref === undefined ? { t: "pong" } : { t: "pong", ref: frame.ref });
        return;
      case "sub": {
        const refused = await deps.hub.subscribe(
          conn,
          frame.groups,
          frame.since,
          frame.presence === true,
        );
        for (const group of refused) {
          errorFrame(new RelayError("not_found", `No such group: ${group}`), frame.ref);
        }
        return;
      }
      case "unsub":
        deps.hub.unsubscribe(conn, frame.groups);
        return;
      case "ack":
        if (!conn.groups.has(frame.group)) throw new RelayError("not_found", "No such group");
        deps.cursors.ack(conn.device, frame.group, frame.seq);
        return;
      case "presence": {
        if (!conn.groups.has(frame.group)) throw new RelayError("not_found", "No such group");
        const members = await deps.db.selectFrom("group_members").select("account_id")
          .where("group_id", "=", frame.group).execute();
        const here = deps.hub.onlineDevicesOf(members.map((m) => m.account_id));
        const online = [...new Set([...here, ...await deps.registry.onlineElsewhere(frame.group)])];
        const answer: Record<string, unknown> = { t: "presence", group: frame.group, online };
        if (frame.ref !== undefined) answer.ref = frame.ref;
        conn.sendJson(answer);
        return;
      }
      case "send": {
        const { t: _t, ref, group, ...body } = frame;
        const sent = await withSpan(
          "sealpost.send",
          { "sealpost.group": group, "sealpost.ephemeral": body.ephemeral === true },
          async (span) => {
            const result = await send(
              deps,
              { account: conn.account, device: conn.device },
              group,
              body,
            );
            if (!result.ephemeral) span.setAttribute("sealpost.seq", result.seq);
            return result;
          },
        );
        const reply: Record<string, unknown> = { t: "sent", group };
        if (ref !== undefined) reply.ref = ref;
        if (sent.ephemeral) reply.delivered = sent.delivered;
        else {
          reply.seq = sent.seq;
          reply.created_at = sent.created_at;
          reply.expires_at = sent.expires_at;
        }
        conn.sendJson(reply);
        return;
      }
    }
  }
}

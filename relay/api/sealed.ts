/**
 * @module
 * Sealed group sends (issue 16), with no token: `POST /v1/sealed/groups/:id/messages` and the
 * sealed WebSocket `GET /v1/sealed/ws` take the group's send capability (`cap`) instead of a
 * device's credentials, so the relay stores and delivers the message without knowing its sender.
 * Each send is rate limited per client address (`SEALPOST_RATE_SEALED_ADDRESS`) and then per
 * capability (`SEALPOST_RATE_SEALED`); a wrong or rotated-out capability answers `404`, as for a
 * group that does not exist. The WebSocket takes `send` and `ping` frames only (no auth, no
 * subscriptions): a sender that wants to read connects as a device on `/v1/ws` separately. A
 * sealed socket never authenticates, so it counts against the caps on unauthenticated sockets
 * (`api/ws.ts`) while it is open.
 */

import { Hono } from "hono";
import type { Deps } from "../deps.ts";
import { closeCode, describeError, RelayError } from "../errors.ts";
import { publicLimits } from "../config/limits.ts";
import { echoableRef, maxFrameBytes, readFrame } from "../connect.ts";
import { describeIssue, type Ref, SealedFrame, SealedSendBody } from "../protocol.ts";
import { RateLimiter } from "../rate_limit.ts";
import { type SendDeps, sendSealed } from "../send.ts";
import { PROTOCOL_VERSION, VERSION } from "../base/version.ts";
import { randomId } from "../base/encoding.ts";
import type { SendResult } from "../persist.ts";
import { type ApiEnv, clientIp, readBody } from "./context.ts";
import { groupParam } from "./groups.ts";
import { type PendingSockets, upgradeCounted, wsRoutes } from "./ws.ts";
import type { ConnectDeps } from "../connect.ts";

/** Both WebSocket endpoints, the device session `/v1/ws` and the sealed one, sharing `pending`. */
export function socketRoutes(
  deps: ConnectDeps,
  draining: () => boolean,
  pending: PendingSockets,
): Hono<ApiEnv>[] {
  return [wsRoutes(deps, draining, pending), sealedRoutes(deps, draining, pending)];
}

/** The sealed send routes, mounted at the root (they need no token). */
function sealedRoutes(
  deps: SendDeps & { sockets?: Set<WebSocket> },
  draining: () => boolean,
  pending: PendingSockets,
): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const limited = (limit: string) => () => deps.metrics.rateLimited.inc({ limit });
  const byAddress = new RateLimiter(
    deps.config.rateSealedAddress,
    undefined,
    deps.clock,
    limited("sealed_address"),
  );
  const byCapability = new RateLimiter(
    deps.config.rateSealed,
    undefined,
    deps.clock,
    limited("sealed"),
  );
  const sealed = (address: string, group: string, body: SealedSendBody): Promise<SendResult> =>
    sendSealed(deps, group, body, (verifier) => {
      byAddress.check(address, "sealed sends from this address");
      byCapability.check(verifier, "sealed sends with this capability");
    });

  app.post("/v1/sealed/groups/:id/messages", async (c) => {
    const group = groupParam(c.req.param("id"));
    const body = await readBody(c, SealedSendBody);
    const sent = await sealed(clientIp(c), group, body);
    const { seq, created_at, expires_at } = sent;
    return c.json({ seq, created_at, expires_at }, sent.duplicate ? 200 : 201);
  });

  app.get("/v1/sealed/ws", (c) => {
    const address = clientIp(c);
    // A sealed socket never authenticates: it counts against the caps on unauthenticated
    // sockets (per address and in total) for as long as it is open.
    const { socket, response, release } = upgradeCounted(c, draining, pending, address);
    handleSealedSocket(deps, socket, (group, body) => sealed(address, group, body), release);
    return response;
  });
  return app;
}

/** Runs the sealed WebSocket: `hello`, then `send` → `sent` or `error`, `ping` → `pong`. */
function handleSealedSocket(
  deps: Deps & { sockets?: Set<WebSocket> },
  socket: WebSocket,
  sealed: (group: string, body: SealedSendBody) => Promise<SendResult>,
  release: () => void,
): void {
  const frameLimit = maxFrameBytes(deps.config.maxMessageBytes);
  const reply = (frame: Record<string, unknown>) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  };
  const fail = (error: unknown, ref: Ref | undefined) => {
    // The mapping /v1/ws and HTTP share: an outage is `unavailable` with a retry, not `internal`.
    const { error: relay, unexpected } = describeError(error);
    if (unexpected) deps.log.error("sealed frame failed", { error });
    const frame: Record<string, unknown> = { t: "error", code: relay.code, message: relay.message };
    if (ref !== undefined) frame.ref = ref;
    if (relay.retryAfterMs !== undefined) frame.retry_after_ms = relay.retryAfterMs;
    reply(frame);
  };
  deps.sockets?.add(socket);
  socket.onopen = () =>
    reply({
      t: "hello",
      // The session's hello shape; nothing is signed on this socket, so the nonce goes unused.
      nonce: randomId(32),
      version: PROTOCOL_VERSION,
      server: VERSION,
      sealed: true,
      limits: publicLimits(deps.config, deps.settings.current),
    });
  socket.onclose = () => {
    deps.sockets?.delete(socket);
    release();
  };
  socket.onerror = () => {};
  socket.onmessage = (event) => {
    const read = readFrame(event.data, frameLimit);
    if ("tooLarge" in read) return socket.close(closeCode("too_large"), "frame too large");
    if ("refused" in read) return fail(new RelayError("invalid_request", read.refused), read.ref);
    const json = read.json;
    const ref = echoableRef((json as { ref?: unknown })?.ref);
    const parsed = SealedFrame.safeParse(json);
    if (!parsed.success) {
      return fail(new RelayError("invalid_request", describeIssue(parsed.error, json)), ref);
    }
    const frame = parsed.data;
    if (frame.t === "ping") {
      return reply(frame.ref === undefined ? { t: "pong" } : { t: "pong", ref: frame.ref });
    }
    const { t: _t, ref: frameRef, group, ...body } = frame;
    sealed(group, body).then((sent) => {
      const answer: Record<string, unknown> = {
        t: "sent",
        group,
        seq: sent.seq,
        created_at: sent.created_at,
        expires_at: sent.expires_at,
      };
      if (frameRef !== undefined) answer.ref = frameRef;
      reply(answer);
    }, (error) => fail(error, frameRef));
  };
}

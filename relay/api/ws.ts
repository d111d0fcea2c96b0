/**
 * @module
 * `GET /v1/ws`: upgrades to a WebSocket and hands the socket to {@link handleSocket}. A relay
 * that is draining refuses new connections with `503 unavailable`.
 */

import { Hono } from "hono";
import { type ConnectDeps, handleSocket } from "../connect.ts";
import { RelayError } from "../errors.ts";
import type { ApiEnv } from "./context.ts";

/** The WebSocket route. */
export function wsRoutes(deps: ConnectDeps, draining: () => boolean): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.get("/v1/ws", (c) => {
    if (draining()) throw new RelayError("unavailable", "The relay is restarting; retry shortly");
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new RelayError("invalid_request", "Expected a WebSocket upgrade");
    }
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw, { idleTimeout: 60 });
    handleSocket(deps, socket);
    return response;
  });
  return app;
}

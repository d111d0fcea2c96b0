/**
 * @module
 * `GET /v1/ws`: upgrades to a WebSocket and hands the socket to {@link handleSocket}. A relay
 * that is draining refuses new connections with `503 unavailable`. Sockets that are open but not
 * yet authenticated are counted ({@link PendingSockets}): past `SEALPOST_MAX_PENDING_SOCKETS_PER_IP`
 * from one client address the upgrade is refused `429 rate_limited`, past
 * `SEALPOST_MAX_PENDING_SOCKETS` in total `503 unavailable` — so a flood of idle connections
 * cannot hold the relay's memory (each may buffer a frame before it is read).
 */

import { type Context, Hono } from "hono";
import { type ConnectDeps, handleSocket } from "../connect.ts";
import { RelayError } from "../errors.ts";
import { type ApiEnv, clientIp } from "./context.ts";

/** How long a refused client should wait before trying again. */
const RETRY_MS = 1000;

/**
 * Counts unauthenticated sockets, in total and per client address. The per-address map holds
 * only addresses with a pending socket, so it never outgrows the total cap.
 *
 * @example
 * ```ts
 * const pending = new PendingSockets(1000, 20);
 * const release = pending.admit("203.0.113.9"); // throws when over a cap
 * release(); // once authenticated or closed
 * ```
 */
export class PendingSockets {
  #total = 0;
  readonly #perIp = new Map<string, number>();

  constructor(readonly max: number, readonly maxPerIp: number) {}

  /** Unauthenticated sockets now. */
  get total(): number {
    return this.#total;
  }

  /** Admits one more pending socket from `ip`, or throws; returns its (idempotent) release. */
  admit(ip: string): () => void {
    const mine = this.#perIp.get(ip) ?? 0;
    if (mine >= this.maxPerIp) {
      throw new RelayError(
        "rate_limited",
        "Too many unauthenticated WebSockets from your address: authenticate the open ones",
        RETRY_MS,
      );
    }
    if (this.#total >= this.max) {
      throw new RelayError("unavailable", "Too many unauthenticated WebSockets", RETRY_MS);
    }
    this.#total++;
    this.#perIp.set(ip, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#perIp.get(ip) ?? 1) - 1;
      if (left <= 0) this.#perIp.delete(ip);
      else this.#perIp.set(ip, left);
    };
  }
}

/**
 * What both WebSocket routes (`/v1/ws`, `/v1/sealed/ws`) do before they run a socket: refuse
 * while draining (`503`) or without an upgrade header (`400`), admit one pending socket for
 * `address` (or throw), then upgrade. `release` frees the pending slot; a failed upgrade frees it
 * at once.
 */
export function upgradeCounted(
  c: Context<ApiEnv>,
  draining: () => boolean,
  pending: PendingSockets,
  address: string,
): { socket: WebSocket; response: Response; release: () => void } {
  if (draining()) throw new RelayError("unavailable", "The relay is restarting; retry shortly");
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new RelayError("invalid_request", "Expected a WebSocket upgrade");
  }
  const release = pending.admit(address);
  try {
    // A socket silent for 50 s gets a ping frame, and is closed after 50 s more without an
    // answer (Deno's idleTimeout: pings at half of it). Every idle socket pays a timer and a ping
    // per period, so the period is long (30 s: 10,000 idle sockets cost 3.1 % of a core, 60 s:
    // 2.4 %; bench/README.md), but under the 60 s after which nginx and AWS load balancers cut
    // a silent connection by default, so a client that never pings survives them.
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw, { idleTimeout: 100 });
    return { socket, response, release };
  } catch (error) {
    release();
    throw error;
  }
}

/** The WebSocket route; `pending` is shared with the sealed socket (`api/sealed.ts`). */
export function wsRoutes(
  deps: ConnectDeps,
  draining: () => boolean,
  pending: PendingSockets,
): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.get("/v1/ws", (c) => {
    const { socket, response, release } = upgradeCounted(c, draining, pending, clientIp(c));
    handleSocket(deps, socket, release);
    return response;
  });
  return app;
}

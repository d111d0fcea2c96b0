/**
 * @module
 * Assembles a relay from what `main.ts` (or a test) built: configuration, an open database, a
 * clock and a logger. `createRelay` wires the services — bus, hub, group commit, cursors,
 * long-poll waiters — and returns the request handler plus `start`/`drain`/`close`. Nothing here
 * connects anywhere by itself.
 */

import { CursorStore } from "./ack.ts";
import { ActivityTracker } from "./activity.ts";
import { groupRoutes } from "./api/groups.ts";
import { messageRoutes } from "./api/messages.ts";
import { createApi } from "./api/mod.ts";
import { wsRoutes } from "./api/ws.ts";
import type { Bus } from "./bus.ts";
import { LocalBus } from "./bus_local.ts";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { ConnectDeps } from "./connect.ts";
import { type DatabaseHandle, ping } from "./database.ts";
import type { Deps } from "./deps.ts";
import { CLOSE } from "./errors.ts";
import { Hub } from "./hub.ts";
import { InboxWaiters } from "./inbox.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { isMigrated } from "./migrate.ts";
import { GroupCommit } from "./persist.ts";
import { RateLimiter } from "./rate_limit.ts";
import { RuntimeSettings } from "./runtime_settings.ts";

/** What a relay is built from. */
export type RelayOptions = {
  config: Config;
  database: DatabaseHandle;
  clock: Clock;
  log: Logger;
  /** The bus; defaults to the in-process bus (one instance). */
  bus?: Bus;
  /** This instance's id (defaults to a random one). */
  instanceId?: string;
};

/** A built relay. */
export interface Relay {
  readonly deps: ConnectDeps;
  /** Handles one HTTP request (including WebSocket upgrades). */
  fetch(request: Request, info?: { remoteAddr?: Deno.NetAddr }): Response | Promise<Response>;
  /** Starts background work (activity and cursor flushes). */
  start(): void;
  /** True when the relay can take traffic. */
  ready(): Promise<boolean>;
  /** Begins draining: `/readyz` answers 503 and new WebSockets are refused. */
  drain(): void;
  /** Waits for in-flight commits, closes sockets with 1001, flushes state and stops. */
  close(): Promise<void>;
}

/**
 * Builds a relay.
 *
 * @example
 * ```ts
 * const relay = createRelay({ config, database, clock: systemClock, log });
 * relay.start();
 * Deno.serve((req, info) => relay.fetch(req, info));
 * ```
 */
export function createRelay(options: RelayOptions): Relay {
  const { config, database, clock, log } = options;
  const db = database.db;
  const bus = options.bus ?? new LocalBus();
  const instanceId = options.instanceId ?? crypto.randomUUID();
  const settings = new RuntimeSettings(db, clock, {
    registration: config.registration,
    retention_s: Math.floor(config.retention / 1000),
  });
  const activity = new ActivityTracker(db, clock, log, config.inactiveAfter);
  const metrics = new Metrics();
  const base: Deps = {
    config,
    db,
    dbKind: database.kind,
    clock,
    log,
    settings,
    activity,
    bus,
    metrics,
  };
  const cursors = new CursorStore(db, log);
  const hub = new Hub({
    db,
    bus,
    clock,
    log,
    instanceId,
    maxConnectionsPerDevice: config.maxConnectionsPerDevice,
    maxBufferedBytes: config.maxSocketBufferBytes,
    cursorsOf: (device) => cursors.cursorsOf(device),
    onClose: (code) => metrics.wsCloses.inc({ code: String(code) }),
    onDeliver: (path) => metrics.deliveries.inc({ path }),
  });
  metrics.gauge(
    "sealpost_websocket_connections",
    "Live authenticated WebSocket connections.",
    () => hub.connections,
  );
  metrics.gauge(
    "sealpost_devices_online",
    "Devices with at least one live connection.",
    () => hub.onlineDevices,
  );
  const commit = new GroupCommit({
    db,
    bus,
    clock,
    log,
    maxTtlMs: config.maxTtl,
    windowMs: config.commitWindowMs,
    onBatch: (size, waits, newMessages, newBytes) => {
      metrics.batchSize.observe(size);
      for (const ms of waits) metrics.commitSeconds.observe(ms / 1000);
      metrics.messagesAccepted.inc(newMessages);
      metrics.bytesIn.inc(newBytes);
    },
  });
  const waiters = new InboxWaiters(bus);
  const deps: ConnectDeps & { waiters: InboxWaiters; pollLimit: RateLimiter } = {
    ...base,
    commit,
    hub,
    cursors,
    waiters,
    instanceId,
    sendLimit: new RateLimiter(config.rateSend, config.sendBurst, clock),
    pollLimit: new RateLimiter(config.ratePoll, undefined, clock),
    isMember: async (group, account) =>
      !!(await db.selectFrom("group_members").select("group_id").where("group_id", "=", group)
        .where("account_id", "=", account).executeTakeFirst()),
  };
  let draining = false;

  const ready = async () => !draining && await ping(db) && await isMigrated(db).catch(() => false);
  const app = createApi(base, {
    hooks: { onRevoked: (device) => bus.publish({ kind: "revoked", device }) },
    ready,
    root: [wsRoutes(deps, () => draining)],
    v1: [
      (auth) => groupRoutes(base, auth, (device) => cursors.pending(device)),
      (auth) => messageRoutes(deps, auth),
    ],
  });

  return {
    deps,
    fetch: (request, info) => app.fetch(request, { remoteAddr: info?.remoteAddr }),
    start: () => {
      activity.start();
      cursors.start();
    },
    ready,
    drain: () => {
      draining = true;
      waiters.wakeAll();
    },
    close: async () => {
      draining = true;
      waiters.close();
      await commit.idle();
      hub.closeAll(CLOSE.draining, "relay restarting");
      hub.stop();
      await cursors.stop();
      await activity.stop();
      await bus.close();
    },
  };
}

/**
 * @module
 * Assembles a relay from what `main.ts` (or a test) built: configuration, an open database, a
 * clock and a logger. `createRelay` wires the services — bus, hub, group commit, cursors,
 * long-poll waiters — and returns the request handler plus `start`/`drain`/`close`. Nothing here
 * connects anywhere by itself.
 */

import type { Hono } from "hono";
import type { ApiEnv } from "./api/context.ts";
import { CursorStore } from "./ack.ts";
import { backlogReader, type ReplayReader, replayReader } from "./backlog.ts";
import { blobRoutes } from "./api/blobs.ts";
import { groupRoutes } from "./api/groups.ts";
import { keyPackageRoutes } from "./api/key_packages.ts";
import { type MessageDeps, messageRoutes } from "./api/messages.ts";
import { createApi } from "./api/mod.ts";
import { PendingSockets } from "./api/ws.ts";
import { socketRoutes } from "./api/sealed.ts";
import type { Bus } from "./bus/bus.ts";
import type { BlobStore } from "./blobs/mod.ts";
import { openBlobStore } from "./blobs/open.ts";
import { BlobPolicy } from "./blobs/policy.ts";
import type { LifecycleHooks } from "./jobs/cleanup.ts";
import type { Clock } from "./base/clock.ts";
import { type Config, parseRate } from "./config/config.ts";
import type { ConnectDeps } from "./connect.ts";
import type { DatabaseHandle } from "./store/database.ts";
import { closeCode, ERRORS } from "./errors.ts";
import { isMember, membershipsOf } from "./accounts/groups.ts";
import { liveDevices } from "./accounts/devices.ts";
import { createDeps, type Deps } from "./deps.ts";
import { Hub } from "./hub.ts";
import { InboxWaiters } from "./inbox.ts";
import type { Logger } from "./base/log.ts";
import { InstanceRegistry } from "./cluster/instances.ts";
import { LocalInstances, registryDirectory } from "./cluster/instance_directory.ts";
import type { InstanceDirectory } from "./cluster/instance_directory.ts";
import type { Leadership } from "./cluster/leader.ts";
import { soleInstance } from "./cluster/mod.ts";
import { VERSION } from "./base/version.ts";
import { GroupCommit } from "./persist.ts";
import { pushRoutes } from "./api/push.ts";
import type { PushEndpoints } from "./push/open.ts";
import { PushService } from "./push/service.ts";
import { RateLimiter } from "./rate_limit.ts";
import { BackupSchedule } from "./jobs/backup_schedule.ts";
import { Sweeper } from "./jobs/sweep.ts";
import { watchDataDir } from "./store/disk_space.ts";
import { isReady } from "./store/ready.ts";

/** What a relay is built from. */
export type RelayOptions = {
  config: Config;
  database: DatabaseHandle;
  clock: Clock;
  log: Logger;
  /** The bus; defaults to the in-process bus (one instance). */
  bus?: Bus;
  /** Who leads background jobs; defaults to this instance alone (embedded). */
  leadership?: Leadership;
  /** The blob store; defaults to the configured one (`SEALPOST_BLOB_STORE`). */
  blobStore?: BlobStore;
  /** Cleanup hooks (the push wake-up before a device is deleted). */
  lifecycle?: LifecycleHooks;
  /** Push service endpoints and trusted CAs (tests point them at local servers). */
  push?: PushEndpoints;
  /**
   * Parts served beside the relay's API (the admin dashboard): each is built from the relay's
   * services and mounted at the root. The relay itself knows nothing of them.
   */
  mounts?: ReadonlyArray<(parts: RelayParts) => Mount>;
};

/** What a mounted part (the admin dashboard) may use of a built relay. */
export type RelayParts = Deps & {
  /** The relay instances of the cluster, this one included. */
  instances: InstanceDirectory;
  /** This instance's live connections. */
  live: Hub;
  /** Uploaded blobs and their bytes. */
  blobUsage: () => Promise<{ blobs: number; bytes: number }>;
};

/** Routes served beside the relay's API, with their own background work. */
export type Mount = {
  routes: Hono<ApiEnv>;
  /** Called once the relay has started. */
  start?(): Promise<void>;
  /** Called when the relay closes. */
  stop?(): void;
};

/** A built relay. */
export interface Relay {
  readonly deps: ConnectDeps;
  readonly registry: InstanceRegistry;
  readonly leadership: Leadership;
  /** Blob rules over the blob store. */
  readonly blobs: BlobPolicy;
  /** Expiry, blob purge and device cleanup, on a timer while started. */
  readonly sweeper: Sweeper;
  /** Push wake-ups for offline devices. */
  readonly push: PushService;
  /** Handles one HTTP request (including WebSocket upgrades). */
  fetch(request: Request, info?: { remoteAddr?: Deno.NetAddr }): Response | Promise<Response>;
  /** Every route of the HTTP app (method and Hono path, middleware left out), for the API docs' tests. */
  routes(): { method: string; path: string }[];
  /** Starts background work (activity and cursor flushes, heartbeats, leader jobs). */
  start(): Promise<void>;
  /** True when the relay can take traffic. */
  ready(): Promise<boolean>;
  /** Begins draining: `/readyz` answers 503 and new WebSockets are refused. */
  drain(): void;
  /** Waits for in-flight commits, closes sockets with 1001, flushes state and stops. */
  close(): Promise<void>;
}

/**
 * Builds a relay, step by step: the base dependencies, the live connections (hub and instance
 * registry), the services around them (push, group commit, blobs, background jobs), the
 * connection dependencies, the mounted parts, the routes, and the start/close lifecycle.
 *
 * @example
 * ```ts
 * const relay = createRelay({ config, database, clock: systemClock, log });
 * await relay.start();
 * Deno.serve((req, info) => relay.fetch(req, info));
 * ```
 */
export function createRelay(options: RelayOptions): Relay {
  const { config, database } = options;
  // Step 1: configuration, database, clock and logger, plus the services every part shares.
  const sole = soleInstance();
  const shared = createDeps({ ...options, bus: options.bus ?? sole.bus });
  // A serving relay also watches the data directory's free space (refusing writes when low).
  const base: Deps = {
    ...shared,
    disk: watchDataDir(config, database.kind, options.blobStore?.kind ?? config.blobStore, {
      log: shared.log,
      metrics: shared.metrics,
    }),
  };
  const { db, bus, log, metrics, settings, activity } = base;
  const leadership = options.leadership ?? sole.leadership;
  observeStorage(base, database);
  const cursors = new CursorStore(db, log);
  const onFallback = () => metrics.replicaFallbacks.inc();
  const read = backlogReader(db, database.replica, onFallback);
  const replay = replayReader(db, database.replica, onFallback);
  const { hub, registry } = liveConnections(base, { replay, cursors, leadership });
  const services = relayServices(base, options, { hub, registry, leadership });
  const { push, commit, blobs, sweeper, backups } = services;
  const waiters = new InboxWaiters(bus);
  const sockets = new Set<WebSocket>();
  const deps = connectionDeps(base, {
    registry,
    sockets,
    read,
    commit,
    hub,
    cursors,
    waiters,
    blobs,
  });
  // Run-time settings changed by an admin (on any instance) apply here without a restart.
  settings.onChange((values) => {
    deps.sendLimit.setRate(parseRate(values.rate_send));
    deps.pollLimit.setRate(parseRate(values.rate_poll));
    activity.setInactiveAfter(values.inactive_after_s * 1000);
  });
  const mounted = (options.mounts ?? []).map((mount) =>
    mount(relayParts(base, hub, registry, blobs))
  );
  let draining = false;
  const jobs: ReturnType<typeof setInterval>[] = [];
  const ready = () => isReady(db, draining);
  // Sockets not (yet) authenticated, device and sealed alike, share one set of caps.
  const pendingSockets = new PendingSockets(
    config.maxPendingSockets,
    config.maxPendingSocketsPerIp,
  );
  metrics.gauge(
    "sealpost_websocket_pending",
    "WebSockets open but not authenticated (sealed sockets included).",
    () => pendingSockets.total,
  );
  const app = createApi(base, {
    hooks: {
      // The push target goes before the answer, so a revoked device is never woken again.
      onRevoked: async (device) => {
        bus.publish({ kind: "revoked", device });
        await push.deleteTarget(device).catch((error) =>
          log.warn("push target removal failed", { error })
        );
      },
    },
    pushInfo: () => push.info(),
    ready,
    notReady: () => database.failure?.() ?? base.disk?.status()?.reason ?? null,
    root: [...socketRoutes(deps, () => draining, pendingSockets), ...mounted.map((m) => m.routes)],
    v1: [
      (auth) => groupRoutes(base, auth, (device) => cursors.pending(device)),
      (auth) => messageRoutes(deps, auth),
      (auth) => pushRoutes(push, auth),
      (auth) => blobRoutes(blobs, auth),
      (auth) => keyPackageRoutes(base, auth),
    ],
  });

  return {
    deps,
    fetch: (request, info) => app.fetch(request, { remoteAddr: info?.remoteAddr }),
    routes: () => {
      const seen = new Map<string, { method: string; path: string }>();
      for (const r of app.routes) {
        if (r.method !== "ALL") {
          seen.set(`${r.method} ${r.path}`, { method: r.method, path: r.path });
        }
      }
      return [...seen.values()];
    },
    registry,
    leadership,
    blobs,
    sweeper,
    push,
    start: async () => {
      await push.start();
      activity.start();
      cursors.start();
      settings.start((error) => log.warn("settings reload failed", { error }));
      for (const mount of mounted) {
        await mount.start?.().catch((error) =>
          log.error("starting a mounted part failed", { error })
        );
      }
      await leadership.start();
      await registry.start();
      sweeper.start();
      backups?.start();
      jobs.push(setInterval(() => {
        if (!leadership.isLeader()) return;
        registry.prune().catch((error) => log.warn("registry prune failed", { error }));
      }, 10_000));
    },
    ready,
    drain: () => {
      draining = true;
      waiters.wakeAll();
    },
    close: async () => {
      draining = true;
      waiters.close();
      for (const job of jobs) clearInterval(job);
      settings.stop();
      for (const mount of mounted) mount.stop?.();
      await commit.idle();
      await sweeper.stop();
      await backups?.stop();
      await push.stop();
      hub.closeAll("draining");
      for (const socket of sockets) {
        try {
          socket.close(closeCode("draining"), ERRORS.draining.message);
        } catch { /* already closing */ }
      }
      hub.stop();
      await cursors.stop();
      await activity.stop();
      await registry.stop();
      await leadership.stop();
      await bus.close();
    },
  };
}

/** Query timings, the pool size and the bus lag as metrics. */
function observeStorage(base: Deps, database: DatabaseHandle): void {
  const { metrics } = base;
  database.queries.listen((ms, ok) =>
    metrics.dbQuerySeconds.observe({ outcome: ok ? "ok" : "error" }, ms / 1000)
  );
  metrics.gauge(
    "sealpost_db_pool_size",
    "Connections the relay's database pool may open.",
    () => database.poolSize,
  );
  base.bus.setLagObserver?.(
    (ms) => metrics.busLagSeconds.observe(Math.max(0, ms) / 1000),
  );
}

/**
 * Step 2: this instance's live connections (the hub) and its row in the instance registry,
 * which counts them; the bus asks the hub which groups it follows, and a bus gap revalidates.
 */
function liveConnections(
  base: Deps,
  parts: { replay: ReplayReader; cursors: CursorStore; leadership: Leadership },
): { hub: Hub; registry: InstanceRegistry } {
  const { config, db, bus, clock, log, metrics } = base;
  const { replay, cursors, leadership } = parts;
  const hub: Hub = new Hub({
    read: replay,
    bus,
    clock,
    log,
    instanceId: config.instanceId,
    maxConnectionsPerDevice: config.maxConnectionsPerDevice,
    maxBufferedBytes: config.maxSocketBufferBytes,
    presence: config.presence === "on",
    cursorsOf: (device) => cursors.cursorsOf(device),
    onClose: (code) => metrics.wsCloses.inc({ code: String(code) }),
    onDeliver: (path, bytes, message) => {
      metrics.deliveries.inc({ path });
      metrics.bytesOut.inc(bytes);
      if (path !== "live") return;
      metrics.deliverSeconds.observe(Math.max(0, clock.now() - message.created_at) / 1000);
    },
    onDeliverMany: (path, bytes, count) => {
      metrics.deliveries.inc({ path }, count);
      metrics.bytesOut.inc(bytes);
    },
    onPresence: (device, online) => registry.deviceOnline(device, online),
  });
  const registry = new InstanceRegistry({
    db,
    clock,
    log,
    id: config.instanceId,
    region: config.region ?? null,
    version: VERSION,
    connections: () => hub.connections,
    isLeader: () => leadership.isLeader(),
  });
  bus.setInterest?.((group) => hub.hasSubscribers(group));
  bus.onGap(() => {
    revalidate(base, hub).catch((error) =>
      log.error("read-back after a bus gap failed", { error })
    );
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
  return { hub, registry };
}

/** After missed bus events: close revoked devices, refresh memberships, read back messages. */
async function revalidate(base: Deps, hub: Hub): Promise<void> {
  const conns = hub.allConnections();
  if (conns.length === 0) return;
  const alive = await liveDevices(base, [...new Set(conns.map((c) => c.device))]);
  for (const conn of conns) {
    if (!alive.has(conn.device)) {
      hub.closeConnection(conn, "device_revoked", "device revoked or removed");
    }
  }
  hub.resync(await membershipsOf(base, [...new Set(conns.map((c) => c.account))]));
}

/**
 * Step 3: the services around the message path — push wake-ups, group commit (which hands each
 * commit to push), the blob policy and the leader's background jobs (sweeper, backups).
 */
function relayServices(
  base: Deps,
  options: RelayOptions,
  live: { hub: Hub; registry: InstanceRegistry; leadership: Leadership },
) {
  const { config, db, bus, clock, log, metrics } = base;
  const { hub, registry, leadership } = live;
  const push = new PushService(base, {
    online: async (devices) => {
      const here = devices.filter((d) => hub.isOnline(d));
      const elsewhere = await registry.onlineAnywhere(devices.filter((d) => !hub.isOnline(d)));
      return new Set([...here, ...elsewhere]);
    },
    isLeader: () => leadership.isLeader(),
    endpoints: options.push,
  });
  const commit = new GroupCommit({
    db,
    bus,
    clock,
    log,
    maxTtlMs: config.maxTtl,
    windowMs: config.commitWindowMs,
    // Several commits in flight on server Postgres (half the pool; reads keep the rest); PGlite
    // has one connection.
    lanes: base.dbKind === "pglite" ? 1 : Math.max(1, Math.floor(options.database.poolSize / 2)),
    maxQueuedBytes: config.commitQueueBytes,
    maxGroupsPerAccount: config.maxGroupsPerAccount,
    onBatch: (size, waits, newMessages, newBytes) => {
      metrics.batchSize.observe(size);
      for (const ms of waits) metrics.commitSeconds.observe(ms / 1000);
      metrics.messagesAccepted.inc(newMessages);
      metrics.bytesIn.inc(newBytes);
    },
    onCommitted: (published) => push.afterCommit(published),
  });
  metrics.gauge(
    "sealpost_commit_queue_sends",
    "Sends waiting for or in a group-commit transaction on this instance.",
    () => commit.queued,
  );
  metrics.gauge(
    "sealpost_commit_queue_bytes",
    "What the queued sends count against SEALPOST_COMMIT_QUEUE_BYTES (body plus a fixed overhead each).",
    () => commit.queuedBytes,
  );
  const blobs = new BlobPolicy(base, options.blobStore ?? openBlobStore(config));
  const backups = config.backupInterval === null ? null : new BackupSchedule({
    db,
    dbKind: base.dbKind,
    blobs: blobs.store,
    clock,
    log,
    metrics,
    dir: config.backupDir,
    intervalMs: config.backupInterval,
    keep: config.backupKeep,
    isLeader: () => leadership.isLeader(),
  });
  const sweeper = new Sweeper({ ...base, blobs }, {
    hooks: {
      onPass: (pass) =>
        push.wakeIdle(pass).then(() => {}, (error) => log.warn("idle wake-up failed", { error })),
      ...options.lifecycle,
    },
    isLeader: () => leadership.isLeader(),
  });
  return { push, commit, blobs, backups, sweeper };
}

/** Step 4: what a WebSocket connection and the message routes need, with their rate limits. */
function connectionDeps(
  base: Deps,
  parts: Omit<
    ConnectDeps & MessageDeps,
    keyof Deps | "sendLimit" | "pollLimit" | "isMember" | "instanceId"
  >,
): ConnectDeps & MessageDeps {
  const { config, clock, metrics } = base;
  return {
    ...base,
    ...parts,
    instanceId: config.instanceId,
    sendLimit: new RateLimiter(
      config.rateSend,
      config.sendBurst,
      clock,
      () => metrics.rateLimited.inc({ limit: "send" }),
    ),
    pollLimit: new RateLimiter(
      config.ratePoll,
      undefined,
      clock,
      () => metrics.rateLimited.inc({ limit: "poll" }),
    ),
    isMember: (group, account) => isMember(base, group, account),
  };
}

/** Step 5: what a mounted part (the admin dashboard) is built from. */
function relayParts(
  base: Deps,
  hub: Hub,
  registry: InstanceRegistry,
  blobs: BlobPolicy,
): RelayParts {
  const { config, clock } = base;
  return {
    ...base,
    instances: registryDirectory(
      registry,
      new LocalInstances({
        id: config.instanceId,
        region: config.region ?? null,
        version: VERSION,
        clock,
        connections: () => hub.connections,
      }),
    ),
    live: hub,
    blobUsage: () => blobs.usage(),
  };
}

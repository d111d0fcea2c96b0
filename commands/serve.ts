/**
 * @module
 * `sealpost serve`: opens the database, applies migrations, builds the relay and listens until
 * SIGINT/SIGTERM, then drains (readyz 503, sockets closed with 1001) and exits within
 * `SEALPOST_DRAIN_TIMEOUT` (plus a short grace enforced by a watchdog thread, `watchdog.ts`, even
 * when the main thread is stuck). On the embedded database it owns the data directory for as long
 * as it runs (`data_dir.ts`) and serves a control socket for live backups (`control.ts`).
 * {@link buildRelay} is the one constructor of a serving relay (the test relays use it too).
 */

import { type Clock, systemClock } from "../relay/base/clock.ts";
import type { Config } from "../relay/config/config.ts";
import { type DatabaseHandle, openDatabase } from "../relay/store/database.ts";
import type { PushEndpoints } from "../relay/push/open.ts";
import type { Logger } from "../relay/base/log.ts";
import { migrate } from "../relay/store/migrate.ts";
import { createRelay, type Relay } from "../relay/mod.ts";
import { mountAdmin } from "../admin/mod.ts";
import { clusterParts } from "../relay/cluster/mod.ts";
import { claimDataDir } from "./data_dir.ts";
import { CONTROL_SOCKET, serveControl } from "./control.ts";
import { startStopWatchdog } from "./watchdog.ts";
import { DiskSpace } from "../relay/store/disk_space.ts";

/** How long past the drain timeout the watchdog waits before it kills a stuck process. */
const WATCHDOG_GRACE_MS = 2_000;
/** The exit code after the embedded database failed on a full disk (sysexits' EX_TEMPFAIL). */
export const EXIT_TEMPFAIL = 75;
/** How often a relay waiting for disk space at start looks again. */
const SPACE_POLL_MS = 5_000;

/**
 * Waits until the data directory has its reserve free before opening the embedded database:
 * crash recovery on a full disk would fail the way a commit does. Logs once while waiting.
 */
async function waitForSpace(config: Config, log: Logger): Promise<void> {
  const disk = new DiskSpace(config.dataDir, config.diskReserve);
  for (let logged = false; disk.refresh()?.low; logged = true) {
    if (!logged) log.error("waiting for disk space before opening the database", disk.status()!);
    await new Promise((resolve) => setTimeout(resolve, SPACE_POLL_MS));
  }
}

/**
 * postgres.js 3.4 under Deno can throw from a queued write after the server closed the
 * connection (`socket.write` on a socket it already dropped) — an uncaught error in a timer that
 * would end the process during a database restart. The pool reconnects by itself, so that one
 * error is logged and absorbed; anything else still ends the process.
 */
function absorbDriverRaces(log: Logger): void {
  const fromDriver = (error: unknown) =>
    error instanceof Error && /postgres\/src\/connection\.js/.test(error.stack ?? "");
  globalThis.addEventListener("error", (event) => {
    if (!fromDriver(event.error)) return;
    event.preventDefault();
    log.warn("database connection dropped mid-write; the pool reconnects", { error: event.error });
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    if (!fromDriver(event.reason)) return;
    event.preventDefault();
    log.warn("database connection dropped mid-write; the pool reconnects", { error: event.reason });
  });
}

/** What a serving relay is built from besides its configuration and database. */
export type BuildRelayOptions = {
  config: Config;
  database: DatabaseHandle;
  clock: Clock;
  log: Logger;
  /** Use the in-process bus and sole leadership even on server Postgres (tests). */
  localBus?: boolean;
  /** Push service endpoints and trusted CAs (tests point them at local servers). */
  push?: PushEndpoints;
};

/**
 * Builds the relay `serve` runs (and the test relays): the cluster parts that fit the database
 * (bus, leadership) and the admin dashboard mounted beside the API.
 *
 * @example
 * ```ts
 * const relay = await buildRelay({ config, database, clock: systemClock, log });
 * await relay.start();
 * ```
 */
export async function buildRelay(options: BuildRelayOptions): Promise<Relay> {
  const { config, database, log } = options;
  const parts = options.localBus ? {} : await clusterParts(database, config.instanceId, log);
  return createRelay({
    config,
    database,
    clock: options.clock,
    log,
    ...parts,
    push: options.push,
    mounts: [mountAdmin],
  });
}

/** Runs the relay until a stop signal. */
export async function serve(config: Config, log: Logger): Promise<void> {
  absorbDriverRaces(log);
  const started = performance.now();
  // The embedded database has one owner: refuse to start on a directory another process holds.
  const claim = await claimDataDir(config, "serve");
  const lock = claim.kind === "locked" ? claim.lock : null;
  if (lock) await waitForSpace(config, log);
  let failed = (_reason: string) => {};
  const database = await openDatabase(config, { onFailure: (reason) => failed(reason) });
  const report = await migrate(database.db);
  if (report.applied.length > 0) log.info("migrated", { applied: report.applied });
  const relay = await buildRelay({ config, database, clock: systemClock, log });
  await relay.start();
  // Commands run beside an embedded relay (backup) reach it here instead of opening the database.
  const control = lock
    ? await serveControl({
      dataDir: config.dataDir,
      db: database.db,
      dbKind: database.kind,
      blobs: relay.blobs.store,
      log,
    })
    : null;
  if (control) await lock?.announce(CONTROL_SOCKET);

  // Opened last, once a stop signal is sure to be heard (below).
  const servers: { main?: Deno.HttpServer; metrics?: Deno.HttpServer } = {};
  const stop = async (signal: string, exitCode = 0) => {
    log.info("draining", { signal });
    relay.drain();
    const timer = setTimeout(() => {
      log.warn("drain timed out; exiting");
      Deno.exit(1);
    }, config.drainTimeout);
    await relay.close();
    await control?.close();
    await servers.main?.shutdown();
    await servers.metrics?.shutdown();
    await database.close();
    lock?.release();
    clearTimeout(timer);
    log.info("stopped");
    Deno.exit(exitCode);
  };
  let stopping = false;
  const begin = (signal: string, exitCode?: number) => {
    if (stopping) return;
    stopping = true;
    stop(signal, exitCode).catch((error) => {
      log.error("stop failed", { error });
      Deno.exit(1);
    });
  };
  // Both the stop listeners and the watchdog are in place before the relay says it listens: a
  // signal any time after that line drains. (Once any thread listens for a signal, its default
  // action — ending the process — is off: the main thread's listeners come first, or a SIGTERM
  // heard only by the watchdog would leave the relay serving until the watchdog killed it.)
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => begin(signal));
  }
  // The drain timer above cannot fire on a stuck main thread; this one runs on its own thread.
  await startStopWatchdog(config.drainTimeout + WATCHDOG_GRACE_MS);
  // The embedded database fenced itself after a full disk: answer 503 while draining, then exit
  // with EX_TEMPFAIL so the supervisor (docker's restart policy, systemd) starts a fresh process,
  // which waits for space, recovers from the WAL and loses nothing acknowledged.
  failed = (reason) => {
    log.error("stopping: the embedded database cannot continue in this process", { reason });
    begin("disk full", EXIT_TEMPFAIL);
  };
  if (stopping) return; // a signal during start-up: stop() exits without serving
  const server = servers.main = Deno.serve({
    port: config.port,
    hostname: config.host,
    onListen: ({ hostname, port }) => {
      const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
      log.info(`sealpost listening on http://${shown}:${port}`, {
        database: database.kind === "pglite"
          ? `embedded PGlite in ${database.location}`
          : database.location,
        data_dir: config.dataDir,
        public_url: config.publicUrl,
        startup_ms: Math.round(performance.now() - started),
      });
    },
  }, (request, info) => relay.fetch(request, { remoteAddr: info.remoteAddr as Deno.NetAddr }));

  // A private metrics port (Fly's [metrics] scrape, a Prometheus on the internal network) serves
  // /metrics without the token; the public port keeps SEALPOST_METRICS_TOKEN's rule.
  servers.metrics = config.metricsPort === undefined ? undefined : Deno.serve({
    port: config.metricsPort,
    hostname: config.host,
    onListen: ({ port }) => log.info(`metrics on port ${port}`, { path: "/metrics" }),
  }, async (request) => {
    if (new URL(request.url).pathname !== "/metrics" || request.method !== "GET") {
      return Response.json({ error: { code: "not_found", message: "Only GET /metrics here" } }, {
        status: 404,
      });
    }
    const metrics = relay.deps.metrics;
    return new Response(await metrics.text(), { headers: { "content-type": metrics.contentType } });
  });

  await server.finished;
}

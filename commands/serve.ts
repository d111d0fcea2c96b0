/**
 * @module
 * `sealpost serve`: opens the database, applies migrations, builds the relay and listens until
 * SIGINT/SIGTERM, then drains (readyz 503, sockets closed with 1001) and exits.
 */

import { systemClock } from "../relay/base/clock.ts";
import type { Config } from "../relay/config/config.ts";
import { openDatabase } from "../relay/store/database.ts";
import type { Logger } from "../relay/base/log.ts";
import { migrate } from "../relay/store/migrate.ts";
import { createRelay } from "../relay/mod.ts";
import { mountAdmin } from "../admin/mod.ts";
import { clusterParts } from "../relay/cluster/mod.ts";

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

/** Runs the relay until a stop signal. */
export async function serve(config: Config, log: Logger): Promise<void> {
  absorbDriverRaces(log);
  const started = performance.now();
  const database = await openDatabase(config);
  const report = await migrate(database.db);
  if (report.applied.length > 0) log.info("migrated", { applied: report.applied });
  const { bus, leadership } = await clusterParts(database, config.instanceId, log);
  const relay = createRelay({
    config,
    database,
    clock: systemClock,
    log,
    bus,
    leadership,
    mounts: [mountAdmin],
  });
  await relay.start();

  const server = Deno.serve({
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

  const stop = async (signal: string) => {
    log.info("draining", { signal });
    relay.drain();
    const timer = setTimeout(() => {
      log.warn("drain timed out; exiting");
      Deno.exit(1);
    }, config.drainTimeout);
    await relay.close();
    await server.shutdown();
    await database.close();
    clearTimeout(timer);
    log.info("stopped");
    Deno.exit(0);
  };
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      if (stopping) return;
      stopping = true;
      stop(signal).catch((error) => {
        log.error("stop failed", { error });
        Deno.exit(1);
      });
    });
  }
  await server.finished;
}

/**
 * @module
 * Assembles a relay from what `main.ts` (or a test) built: configuration, an open database, a
 * clock and a logger. `createRelay` wires the services and returns the request handler plus
 * `start`/`close`; `serveRelay` listens on a socket. Nothing here connects anywhere by itself.
 */

import { ActivityTracker } from "./activity.ts";
import { createApi } from "./api/mod.ts";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import { type DatabaseHandle, ping } from "./database.ts";
import type { Deps } from "./deps.ts";
import type { Logger } from "./log.ts";
import { isMigrated } from "./migrate.ts";
import { RuntimeSettings } from "./runtime_settings.ts";

/** What a relay is built from. */
export type RelayOptions = {
  config: Config;
  database: DatabaseHandle;
  clock: Clock;
  log: Logger;
};

/** A built relay. */
export interface Relay {
  readonly deps: Deps;
  /** Handles one HTTP request (including WebSocket upgrades). */
  fetch(request: Request, info?: { remoteAddr?: Deno.NetAddr }): Response | Promise<Response>;
  /** Starts background work (activity flush, sweeper). */
  start(): void;
  /** True when the relay can take traffic. */
  ready(): Promise<boolean>;
  /** Begins draining: `/readyz` answers 503 from now on. */
  drain(): void;
  /** Stops background work and flushes pending state; the caller closes the database. */
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
  const settings = new RuntimeSettings(db, clock, {
    registration: config.registration,
    retention_s: Math.floor(config.retention / 1000),
  });
  const activity = new ActivityTracker(db, clock, log, config.inactiveAfter);
  const deps: Deps = { config, db, dbKind: database.kind, clock, log, settings, activity };
  let draining = false;

  const ready = async () => !draining && await ping(db) && await isMigrated(db).catch(() => false);
  const app = createApi(deps, {
    hooks: { onRevoked: () => {} },
    ready,
  });

  return {
    deps,
    fetch: (request, info) => app.fetch(request, { remoteAddr: info?.remoteAddr }),
    start: () => activity.start(),
    ready,
    drain: () => {
      draining = true;
    },
    close: async () => {
      draining = true;
      await activity.stop();
    },
  };
}

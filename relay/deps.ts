/**
 * @module
 * What every part of the relay receives: configuration, database, clock, logger and the shared
 * services, built by {@link createDeps} — the one constructor, used by `createRelay` for a
 * serving relay and by `commands/open.ts` for one-shot commands.
 */

import { ActivityTracker } from "./activity.ts";
import type { Bus } from "./bus/bus.ts";
import type { Clock } from "./base/clock.ts";
import type { Config } from "./config/config.ts";
import type { DatabaseHandle, Db } from "./store/database.ts";
import type { Logger } from "./base/log.ts";
import { Metrics } from "./base/metrics.ts";
import { initialRuntimeValues, RuntimeSettings } from "./config/runtime.ts";
import { TokenCache } from "./accounts/token_cache.ts";
import type { DiskSpace } from "./store/disk_space.ts";

/** The base dependencies of every service. */
export interface Deps {
  readonly config: Config;
  readonly db: Db;
  readonly dbKind: "pglite" | "postgres";
  readonly clock: Clock;
  readonly log: Logger;
  readonly settings: RuntimeSettings;
  readonly activity: ActivityTracker;
  readonly bus: Bus;
  readonly metrics: Metrics;
  /** Bearer tokens seen a moment ago (`relay/accounts/token_cache.ts`). */
  readonly tokens: TokenCache;
  /** The data directory's free-space reserve, when it holds the database or blob files. */
  readonly disk?: DiskSpace;
}

/**
 * Builds the base dependencies over an open database and a bus (built in `cluster/mod.ts`).
 *
 * @example
 * ```ts
 * const deps = createDeps({ config, database, clock: systemClock, log, bus: soleInstance().bus });
 * ```
 */
export function createDeps(options: {
  config: Config;
  database: DatabaseHandle;
  clock: Clock;
  log: Logger;
  bus: Bus;
}): Deps {
  const { config, database, clock, log } = options;
  const db = database.db;
  return {
    config,
    db,
    dbKind: database.kind,
    clock,
    log,
    settings: new RuntimeSettings(db, clock, initialRuntimeValues(config)),
    activity: new ActivityTracker(
      db,
      clock,
      log,
      config.inactiveAfter,
      config.lastSeenGranularity,
    ),
    bus: options.bus,
    metrics: new Metrics(),
    tokens: new TokenCache({ bus: options.bus, clock, ttl: config.tokenCacheTtl }),
  };
}

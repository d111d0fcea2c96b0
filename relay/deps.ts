/**
 * @module
 * What every part of the relay receives from the one place that builds things (`main.ts` via
 * `createRelay`): configuration, database, clock, logger and the shared services.
 */

import type { ActivityTracker } from "./activity.ts";
import type { Bus } from "./bus/bus.ts";
import type { Clock } from "./base/clock.ts";
import type { Config } from "./config/config.ts";
import type { Db } from "./store/database.ts";
import type { Logger } from "./base/log.ts";
import type { Metrics } from "./base/metrics.ts";
import type { RuntimeSettings } from "./config/runtime.ts";
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
  /** The data directory's free-space reserve, when it holds the database or blob files. */
  readonly disk?: DiskSpace;
}

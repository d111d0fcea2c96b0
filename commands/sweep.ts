/**
 * @module
 * `sealpost sweep [--dry-run]`: one sweeper run against the configured database and blob store,
 * outside a serving relay (cron, or a look before changing thresholds). It refuses an
 * unmigrated database, refuses an embedded data directory a running relay owns (it sweeps by
 * itself), skips when a serving instance is sweeping right now, and prints one line
 * per kind of thing removed, or with `--dry-run` what a run would remove.
 */

import { ActivityTracker } from "../relay/activity.ts";
import { openBlobStore } from "../relay/blobs/open.ts";
import { BlobPolicy } from "../relay/blobs/policy.ts";
import { LocalBus } from "../relay/bus/bus_local.ts";
import { systemClock } from "../relay/base/clock.ts";
import type { Config } from "../relay/config/config.ts";
import { openDatabase } from "../relay/store/database.ts";
import type { Deps } from "../relay/deps.ts";
import type { Logger } from "../relay/base/log.ts";
import { Metrics } from "../relay/base/metrics.ts";
import { assertNotNewer, isMigrated } from "../relay/store/migrate.ts";
import { initialRuntimeValues, RuntimeSettings } from "../relay/config/runtime.ts";
import { describeSweep, Sweeper } from "../relay/jobs/sweep.ts";
import { claimDataDir } from "./data_dir.ts";

/** Runs one sweep and prints its report; returns false when it could not run. */
export async function sweepCommand(
  config: Config,
  log: Logger,
  options: { dryRun: boolean; print: (line: string) => void },
): Promise<boolean> {
  const claim = await claimDataDir(config, "sweep");
  const database = await openDatabase(config);
  try {
    await assertNotNewer(database.db);
    if (!(await isMigrated(database.db))) {
      options.print("The database is not migrated: run 'sealpost migrate' first");
      return false;
    }
    const clock = systemClock;
    const db = database.db;
    const base: Deps = {
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
      // Serving instances notice deleted devices at their next request (tokens are gone).
      bus: new LocalBus(),
      metrics: new Metrics(),
    };
    const sweeper = new Sweeper({ ...base, blobs: new BlobPolicy(base, openBlobStore(config)) });
    const report = await sweeper.runOnce({ dryRun: options.dryRun });
    if (!report) {
      options.print("Another sweeper is running right now (a serving instance); try again later");
      return false;
    }
    for (const line of describeSweep(report)) options.print(line);
    options.print(`took ${report.durationMs} ms`);
    return true;
  } finally {
    await database.close();
    if (claim.kind === "locked") claim.lock.release();
  }
}

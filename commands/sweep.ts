/**
 * @module
 * `sealpost sweep [--dry-run]`: one sweeper run against the configured database and blob store,
 * outside a serving relay (cron, or a look before changing thresholds). It refuses an
 * unmigrated database, refuses an embedded data directory a running relay owns (it sweeps by
 * itself), skips when a serving instance is sweeping right now, and prints one line
 * per kind of thing removed, or with `--dry-run` what a run would remove.
 */

import { openBlobStore } from "../relay/blobs/open.ts";
import { BlobPolicy } from "../relay/blobs/policy.ts";
import type { Config } from "../relay/config/config.ts";
import type { Logger } from "../relay/base/log.ts";
import { assertNotNewer, isMigrated } from "../relay/store/migrate.ts";
import { describeSweep, Sweeper } from "../relay/jobs/sweep.ts";
import { withDeps } from "./open.ts";

/** Runs one sweep and prints its report; returns false when it could not run. */
export async function sweepCommand(
  config: Config,
  log: Logger,
  options: { dryRun: boolean; print: (line: string) => void },
): Promise<boolean> {
  return await withDeps(config, "sweep", log, async (base, database) => {
    await assertNotNewer(database.db);
    if (!(await isMigrated(database.db))) {
      options.print("The database is not migrated: run 'sealpost migrate' first");
      return false;
    }
    // Serving instances notice deleted devices at their next request (tokens are gone).
    const sweeper = new Sweeper({ ...base, blobs: new BlobPolicy(base, openBlobStore(config)) });
    const report = await sweeper.runOnce({ dryRun: options.dryRun });
    if (!report) {
      options.print("Another sweeper is running right now (a serving instance); try again later");
      return false;
    }
    for (const line of describeSweep(report)) options.print(line);
    options.print(`took ${report.durationMs} ms`);
    return true;
  });
}

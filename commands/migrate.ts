/**
 * @module
 * `sealpost migrate`: applies the pending migrations to the configured database and says where
 * the schema stands. `serve` applies them too at start; this runs them alone (a deploy step).
 */

import type { Config } from "../relay/config/config.ts";
import { migrate } from "../relay/store/migrate.ts";
import { withDatabase } from "./open.ts";

/** Applies pending migrations and prints what was done. */
export async function migrateCommand(
  config: Config,
  print: (line: string) => void,
): Promise<void> {
  const report = await withDatabase(config, "migrate", (database) => migrate(database.db));
  print(
    report.applied.length
      ? `Applied ${report.applied.join(", ")}; the schema is at ${report.current}`
      : `Nothing to apply; the schema is at ${report.current}`,
  );
}

/**
 * @module
 * `sealpost migrate`: applies the pending migrations to the configured database and says where
 * the schema stands. `serve` applies them too at start; this runs them alone (a deploy step).
 * `sealpost migrate --to N` moves the schema to migration N, reverting later ones (a rollback).
 */

import type { Config } from "../relay/config/config.ts";
import { migrate, migrateTo, resolveTarget } from "../relay/store/migrate.ts";
import { withDatabase } from "./open.ts";

/**
 * Applies pending migrations (or, with `to`, moves the schema to that migration, reverting later
 * ones with their `down()`) and prints what was done.
 */
export async function migrateCommand(
  config: Config,
  print: (line: string) => void,
  to?: string,
): Promise<void> {
  const target = to === undefined ? undefined : resolveTarget(to);
  const report = await withDatabase(
    config,
    "migrate",
    (database) => target === undefined ? migrate(database.db) : migrateTo(database.db, target),
  );
  const done = [
    report.applied.length ? `Applied ${report.applied.join(", ")}` : "",
    report.reverted?.length ? `Reverted ${report.reverted.join(", ")}` : "",
  ].filter(Boolean).join("; ");
  print(`${done || "Nothing to apply"}; the schema is at ${report.current ?? "none (empty)"}`);
}

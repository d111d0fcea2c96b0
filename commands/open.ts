/**
 * @module
 * The one place a one-shot command (migrate, doctor, sweep, archive, admin) opens the database
 * and builds what it needs: {@link withDatabase} claims an embedded data directory for the
 * command (refusing one a running relay owns, `data_dir.ts`), opens the configured database,
 * and closes it and releases the claim however the command ends; {@link withDeps} adds the
 * relay's base dependencies (built by the same `createDeps` as a serving relay, on the
 * in-process bus). `serve` builds its relay in `serve.ts`.
 */

import { systemClock } from "../relay/base/clock.ts";
import type { Logger } from "../relay/base/log.ts";
import { soleInstance } from "../relay/cluster/mod.ts";
import type { Config } from "../relay/config/config.ts";
import { createDeps, type Deps } from "../relay/deps.ts";
import { type DatabaseHandle, openDatabase } from "../relay/store/database.ts";
import { type Claim, claimDataDir } from "./data_dir.ts";

/** A claim that lets this process open the database itself (not a live relay's). */
export type OwnClaim = Exclude<Claim, { kind: "live" }>;

/**
 * Claims the data directory for `command` (unless `claim` was already taken), opens the
 * configured database, runs `fn` with it, then closes it and releases the claim.
 *
 * @example
 * ```ts
 * const report = await withDatabase(config, "migrate", (database) => migrate(database.db));
 * ```
 */
export async function withDatabase<T>(
  config: Config,
  command: string,
  fn: (database: DatabaseHandle) => Promise<T>,
  claim?: OwnClaim,
): Promise<T> {
  const own = claim ?? await claimDataDir(config, command) as OwnClaim;
  try {
    const database = await openDatabase(config);
    try {
      return await fn(database);
    } finally {
      await database.close();
    }
  } finally {
    if (own.kind === "locked") own.lock.release();
  }
}

/**
 * {@link withDatabase} with the base dependencies over the database. Serving instances on the
 * same database hear of a command's changes at their next read, or through a bus event the
 * command publishes itself (see `openBus` in `relay/cluster/mod.ts`).
 *
 * @example
 * ```ts
 * await withDeps(config, "admin", log, (deps) => adminRevokeDevice(deps, device, "cli"));
 * ```
 */
export function withDeps<T>(
  config: Config,
  command: string,
  log: Logger,
  fn: (deps: Deps, database: DatabaseHandle) => Promise<T>,
  claim?: OwnClaim,
): Promise<T> {
  return withDatabase(config, command, (database) =>
    fn(
      createDeps({ config, database, clock: systemClock, log, bus: soleInstance().bus }),
      database,
    ), claim);
}

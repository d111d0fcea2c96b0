/**
 * @module
 * Picks the cluster parts for a database: on server Postgres, the LISTEN/NOTIFY bus and
 * advisory-lock leadership (any number of instances); on embedded PGlite, the in-process bus
 * and sole leadership (one instance). The same relay code runs on either.
 */

import type { Bus } from "../bus/bus.ts";
import { LocalBus } from "../bus/bus_local.ts";
import { PostgresBus } from "../bus/bus_postgres.ts";
import type { DatabaseHandle } from "../store/database.ts";
import { AdvisoryLeader, type Leadership, SoleLeader } from "./leader.ts";
import type { Logger } from "../base/log.ts";

/** The bus and leadership for one instance. */
export type ClusterParts = { bus: Bus; leadership: Leadership };

/**
 * Builds the bus and leadership that fit `database`.
 *
 * @example
 * ```ts
 * const { bus, leadership } = await clusterParts(database, config.instanceId, log);
 * const relay = createRelay({ config, database, clock, log, bus, leadership });
 * ```
 */
export async function clusterParts(
  database: DatabaseHandle,
  instanceId: string,
  log: Logger,
): Promise<ClusterParts> {
  if (database.kind === "postgres" && database.url && database.sql) {
    const bus = await PostgresBus.start({ url: database.url, db: database.db, instanceId, log });
    return { bus, leadership: new AdvisoryLeader(database.sql, log) };
  }
  return { bus: new LocalBus(), leadership: new SoleLeader() };
}

/**
 * @module
 * Picks the cluster parts for a database: on server Postgres, the LISTEN/NOTIFY bus and
 * advisory-lock leadership (any number of instances); on embedded PGlite, the in-process bus
 * and sole leadership (one instance). The same relay code runs on either. This is the one place
 * a bus is built.
 */

import type { Bus } from "../bus/bus.ts";
import { LocalBus } from "../bus/bus_local.ts";
import { PostgresBus } from "../bus/bus_postgres.ts";
import type { DatabaseHandle } from "../store/database.ts";
import { AdvisoryLeader, type Leadership, SoleLeader } from "./leader.ts";
import type { Logger } from "../base/log.ts";

/**
 * The bus that fits `database`: LISTEN/NOTIFY on server Postgres, in-process on PGlite. The one
 * place a bus is built (serve, tests, and the admin CLI telling running instances of a
 * revocation).
 */
export async function openBus(
  database: DatabaseHandle,
  instanceId: string,
  log: Logger,
): Promise<Bus> {
  if (database.kind === "postgres" && database.url) {
    return await PostgresBus.start({ url: database.url, db: database.db, instanceId, log });
  }
  return soleInstance().bus;
}

/** The parts of a relay that is the only instance: the in-process bus, leading alone. */
export function soleInstance(): ClusterParts {
  return { bus: new LocalBus(), leadership: new SoleLeader() };
}

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
    const bus = await openBus(database, instanceId, log);
    return { bus, leadership: new AdvisoryLeader(database.sql, log) };
  }
  return soleInstance();
}

/**
 * @module
 * Opens the database behind Kysely: embedded PGlite in `$SEALPOST_DATA_DIR/pg` by default, or a
 * server Postgres through postgres.js when `DATABASE_URL` is set. Both are Postgres, so the rest
 * of the relay has one code path. `bigint` columns are read as JavaScript numbers (milliseconds
 * and sequence numbers stay far below 2^53).
 *
 * PGlite runs in a worker thread of its own (`pglite_client.ts`, `pglite_worker.ts`), so Postgres
 * works on another core than the relay's event loop.
 *
 * Durability: PGlite runs Postgres single-user with `fsync` off. Every commit is written to the
 * data directory's files before it returns, so a crashed process (kill -9) loses nothing it
 * acknowledged; a power cut or kernel crash can lose the last few seconds. Server Postgres keeps
 * its own durability settings.
 */

import { Kysely, type LogEvent, sql } from "kysely";
import { PostgresJSDialect } from "kysely-postgres-js";
import postgres from "postgres";
import type { Database } from "./schema.ts";
import { PgliteWorkerClient, PgliteWorkerDialect } from "./pglite_client.ts";

/** The database handle the relay receives. */
export type Db = Kysely<Database>;

/** An open database and how to close it. */
export interface DatabaseHandle {
  readonly db: Db;
  readonly kind: "pglite" | "postgres";
  /** Where the data lives, for logs and `doctor` (no password). */
  readonly location: string;
  /** For server Postgres: the connection URL (for the bus's own listening connection). */
  readonly url?: string;
  /** For server Postgres: the postgres.js pool (reserved connections for advisory locks). */
  readonly sql?: postgres.Sql;
  /** Query timings of the primary (metrics). */
  readonly queries: QueryObserver;
  /** Pool size (1 for PGlite). */
  readonly poolSize: number;
  /** A read replica for backlog reads, when `DATABASE_REPLICA_URL` is set. */
  readonly replica?: Db;
  /** Why the database can take no more queries in this process (embedded, full disk); or null. */
  failure?(): string | null;
  close(): Promise<void>;
}

/** What the opener tells its caller about the database's fate. */
export type DatabaseHooks = {
  /** The embedded database failed for good in this process (see {@link openPglite}). */
  onFailure?(reason: string): void;
};

const INT8_OID = 20;

/** Watches queries for metrics: each finished query's duration and outcome. */
export class QueryObserver {
  #listeners: ((ms: number, ok: boolean) => void)[] = [];
  /** Adds a listener. */
  listen(fn: (ms: number, ok: boolean) => void): void {
    this.#listeners.push(fn);
  }
  /** The Kysely `log` hook. */
  readonly log = (event: LogEvent): void => {
    for (const fn of this.#listeners) fn(event.queryDurationMillis, event.level === "query");
  };
}

/**
 * Opens embedded PGlite in `dir` (created if missing) on its own thread (`pglite_worker.ts`): the
 * relay's event loop only posts statements and receives rows. After its first disk-full error the
 * database is fenced for this process (every statement fails with `53100`, and `hooks.onFailure`
 * hears why once): PGlite's next commit after a failed WAL write would spin for ever.
 */
export async function openPglite(dir: string, hooks: DatabaseHooks = {}): Promise<DatabaseHandle> {
  await Deno.mkdir(dir, { recursive: true });
  // A new data directory is created by initdb in a second PGlite whose memory (over 250 MiB of
  // WebAssembly heap and code) would stay in the process; created in a worker of its own, it is
  // all returned when that worker ends, before the serving one starts.
  const fresh = await Deno.stat(`${dir}/PG_VERSION`).then(() => false, () => true);
  if (fresh) await (await PgliteWorkerClient.open(dir, () => {})).close();
  const client = await PgliteWorkerClient.open(dir, (reason) => hooks.onFailure?.(reason));
  const queries = new QueryObserver();
  const db = new Kysely<Database>({ dialect: new PgliteWorkerDialect(client), log: queries.log });
  return {
    db,
    queries,
    poolSize: 1,
    kind: "pglite",
    location: dir,
    failure: () => client.fenced,
    close: async () => {
      await db.destroy();
    },
  };
}

/** Seconds a closing pool waits for statements in flight before it terminates its connections. */
const CLOSE_TIMEOUT_S = 5;

/** Connects to a server Postgres at `url` with a small pool. */
export function openPostgres(url: string, options: { max?: number } = {}): DatabaseHandle {
  const client = postgres(url, {
    max: options.max ?? 10,
    // Plan every statement for its own parameters: a generic plan cached while `messages` was
    // small keeps scanning the table after it has grown (until ANALYZE), measured by the bench.
    connection: { application_name: "sealpost", plan_cache_mode: "force_custom_plan" },
    // Fail fast while the database is unreachable (callers answer 503 and clients retry).
    connect_timeout: 5,
    onnotice: () => {},
    types: {
      bigint: {
        to: INT8_OID,
        from: [INT8_OID],
        serialize: (value: number) => String(value),
        parse: (value: string) => Number(value),
      },
    },
  });
  const queries = new QueryObserver();
  const db = new Kysely<Database>({
    dialect: new PostgresJSDialect({ postgres: client }),
    log: queries.log,
  });
  return {
    db,
    queries,
    poolSize: options.max ?? 10,
    kind: "postgres",
    location: redactUrl(url),
    url,
    sql: client,
    close: async () => {
      // Bounded: postgres.js's end() without a timeout can wait for ever on a connection
      // Kysely reserved and released (porsager/postgres#925), seen as a rare hang at shutdown.
      // Past the timeout the remaining connections are terminated. Kysely's destroy() then finds
      // the client already ended.
      await client.end({ timeout: CLOSE_TIMEOUT_S });
      await db.destroy();
    },
  };
}

/** Opens PGlite or Postgres from the configuration. */
export function openDatabase(
  config: { databaseUrl?: string; databaseReplicaUrl?: string; dataDir: string },
  hooks: DatabaseHooks = {},
): Promise<DatabaseHandle> {
  if (config.databaseUrl) {
    const primary = openPostgres(config.databaseUrl);
    if (!config.databaseReplicaUrl) return Promise.resolve(primary);
    return Promise.resolve(
      withReplica(primary, openPostgres(config.databaseReplicaUrl, { max: 5 })),
    );
  }
  return openPglite(`${config.dataDir}/pg`, hooks);
}

/** Attaches a replica to a primary handle; closing the result closes both. */
export function withReplica(primary: DatabaseHandle, replica: DatabaseHandle): DatabaseHandle {
  return {
    ...primary,
    replica: replica.db,
    close: async () => {
      await Promise.all([primary.close(), replica.close()]);
    },
  };
}

/** A URL without its password, safe for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable url)";
  }
}

/** True when the database answers a trivial query. */
export async function ping(db: Db): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}

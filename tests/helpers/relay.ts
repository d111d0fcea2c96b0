/**
 * @module
 * Starts a real relay on a loopback socket for tests, on embedded PGlite (copied from a migrated
 * template, so each test gets a fresh database in well under a second) or on a fresh database of
 * the module's throwaway Postgres cluster.
 */

import { ManualClock } from "../../relay/base/clock.ts";
import { type Config, loadConfig } from "../../relay/config/config.ts";
import {
  type DatabaseHandle,
  openPglite,
  openPostgres,
  withReplica,
} from "../../relay/store/database.ts";
import { createLogger, IDENTITY_FIELDS, type Logger, type LogLevel } from "../../relay/base/log.ts";
import { migrate } from "../../relay/store/migrate.ts";
import type { Relay } from "../../relay/mod.ts";
import { buildRelay } from "../../commands/serve.ts";
import type { PushEndpoints } from "../../relay/push/open.ts";
import { MIGRATIONS } from "../../migrations/mod.ts";
import { freePort, postgresUnavailable, sharedPostgres } from "./postgres.ts";

/** The databases every suite runs against. */
export type DbKind = "pglite" | "postgres";
export const DB_KINDS: DbKind[] = ["pglite", "postgres"];

/** A relay running for a test. */
export interface TestRelay {
  readonly url: string;
  readonly wsUrl: string;
  readonly relay: Relay;
  readonly clock: ManualClock;
  readonly config: Config;
  readonly database: DatabaseHandle;
  readonly dataDir: string;
  readonly logs: string[];
  /** Stops the server and relay and closes the database (keeps the data dir). */
  stop(): Promise<void>;
}

/** Options for {@link startTestRelay}. */
export type TestRelayOptions = {
  db?: DbKind;
  /** Environment-style settings, as a user would give them. */
  env?: Record<string, string>;
  /** Typed overrides (e.g. commit window, buffer limits). */
  overrides?: Partial<Config>;
  clock?: ManualClock;
  /** Reuse this data dir (PGlite) or database URL (Postgres): for restart tests. */
  dataDir?: string;
  databaseUrl?: string;
  logLevel?: LogLevel;
  /** A read replica of `databaseUrl` (Postgres only). */
  replicaUrl?: string;
  /** Use the in-process bus even on Postgres. */
  localBus?: boolean;
  /** Push service endpoints and trusted CAs (local test receivers). */
  push?: PushEndpoints;
};

async function pgliteTemplate(): Promise<string> {
  const key = Object.keys(MIGRATIONS).join("_");
  const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/sealpost-pglite-template-${key}`;
  try {
    await Deno.stat(`${dir}/ready`);
    return dir;
  } catch { /* build it */ }
  const tmp = await Deno.makeTempDir({ prefix: "sealpost-template-" });
  const handle = await openPglite(`${tmp}/pg`);
  await migrate(handle.db);
  await handle.close();
  await Deno.writeTextFile(`${tmp}/ready`, "1");
  try {
    await Deno.rename(tmp, dir);
  } catch {
    // Another test process built it first; use theirs.
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return dir;
}

const createdDirs = new Set<string>();
let cleanupRegistered = false;

/**
 * A temp data dir for a test relay. It outlives `stop()` (restart and export tests reuse it) and
 * is removed when the test process exits.
 */
async function testDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "sealpost-test-" });
  createdDirs.add(dir);
  if (!cleanupRegistered) {
    cleanupRegistered = true;
    globalThis.addEventListener("unload", () => {
      for (const d of createdDirs) {
        try {
          Deno.removeSync(d, { recursive: true });
        } catch { /* already gone */ }
      }
    });
  }
  return dir;
}

/** Skips (outside CI) or fails (under CI) when the database kind cannot run here. */
export function dbUnavailable(kind: DbKind): string | null {
  if (kind === "postgres") {
    const why = postgresUnavailable();
    if (why && Deno.env.get("CI") === "true") {
      throw new Error(`CI=true but Postgres tests cannot run: ${why}`);
    }
    return why;
  }
  return null;
}

/** Opens a database of `kind` for a test, migrated. */
export async function openTestDatabase(
  kind: DbKind,
  reuse: { dataDir?: string; databaseUrl?: string; replicaUrl?: string } = {},
): Promise<{ handle: DatabaseHandle; dataDir: string; databaseUrl?: string }> {
  if (kind === "pglite") {
    const dataDir = reuse.dataDir ?? await testDir();
    if (!reuse.dataDir) {
      const template = await pgliteTemplate();
      const copy = await new Deno.Command("cp", { args: ["-a", `${template}/pg`, `${dataDir}/pg`] })
        .output();
      if (!copy.success) throw new Error("copying the PGlite template failed");
    }
    const handle = await openPglite(`${dataDir}/pg`);
    await migrate(handle.db);
    return { handle, dataDir };
  }
  const databaseUrl = reuse.databaseUrl ?? await (await sharedPostgres()).createDatabase();
  const primary = openPostgres(databaseUrl);
  const handle = reuse.replicaUrl ? withReplica(primary, openPostgres(reuse.replicaUrl)) : primary;
  await migrate(handle.db);
  const dataDir = reuse.dataDir ?? await testDir();
  return { handle, dataDir, databaseUrl };
}

/**
 * Starts a relay on `127.0.0.1` with a random port.
 *
 * @example
 * ```ts
 * const t = await startTestRelay({ db: "postgres" });
 * try { ... } finally { await t.stop(); }
 * ```
 */
export async function startTestRelay(
  options: TestRelayOptions = {},
): Promise<TestRelay & { databaseUrl?: string }> {
  const kind = options.db ?? "pglite";
  const { handle, dataDir, databaseUrl } = await openTestDatabase(kind, options);
  const clock = options.clock ?? new ManualClock(Date.now());
  const logs: string[] = [];
  const log: Logger = createLogger({
    level: options.logLevel ?? "debug",
    format: "json",
    // As main.ts does: identities stay out of log lines unless the test opts in.
    redact: options.env?.SEALPOST_LOG_IDENTITIES === "true" ? [] : IDENTITY_FIELDS,
    sink: (line) => {
      logs.push(line);
      if (Deno.env.get("SEALPOST_TEST_LOGS")) console.error(line);
    },
  });
  // The port is chosen first so signed blob URLs (SEALPOST_PUBLIC_URL) point at this relay.
  const listenPort = freePort();
  const config = loadConfig(
    {
      SEALPOST_DATA_DIR: dataDir,
      SEALPOST_PUBLIC_URL: `http://127.0.0.1:${listenPort}`,
      SEALPOST_INSTANCE_ID: `test-${crypto.randomUUID().slice(0, 8)}`,
      SEALPOST_RATE_AUTH: "off",
      ...options.env,
    },
    {},
    options.overrides,
  );
  const relay = await buildRelay({
    config,
    database: handle,
    clock,
    log,
    localBus: options.localBus,
    push: options.push,
  });
  await relay.start();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: listenPort, onListen: () => {} },
    (req, info) => relay.fetch(req, { remoteAddr: info.remoteAddr as Deno.NetAddr }),
  );
  const port = server.addr.port;
  let stopped = false;
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    relay,
    clock,
    config,
    database: handle,
    dataDir,
    databaseUrl,
    logs,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      relay.drain();
      await relay.close();
      await server.shutdown();
      await handle.close();
    },
  };
}

/** Runs `fn` once per database kind as separate tests named `"<name> [<kind>]"`. */
export function testBothDatabases(
  name: string,
  fn: (kind: DbKind) => Promise<void>,
  options: { only?: DbKind[] } = {},
): void {
  for (const kind of options.only ?? DB_KINDS) {
    const why = dbUnavailable(kind);
    Deno.test({
      name: `${name} [${kind}]`,
      ignore: why !== null,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: () => fn(kind),
    });
    if (why) console.warn(`skipping "${name} [${kind}]": ${why}`);
  }
}

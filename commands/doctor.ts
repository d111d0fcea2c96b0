/**
 * @module
 * `sealpost doctor`: checks the configuration, the database (reachable, migrated, not newer
 * than this binary), a LISTEN/NOTIFY round trip on a server Postgres (which a transaction-mode
 * pooler breaks), push credentials (the APNs key, the FCM service account) as `serve` would load
 * them, and the blob store, and prints what it found, one line per check: `ok`, `warn` (works,
 * but probably not what you want, e.g. an embedded database on a Fly machine) or `FAIL`.
 */

import { openBlobStore } from "../relay/blobs/open.ts";
import type { Config } from "../relay/config/config.ts";
import { type OwnClaim, withDatabase } from "./open.ts";
import { appliedMigrations, assertNotNewer } from "../relay/store/migrate.ts";
import { MIGRATIONS } from "../migrations/mod.ts";
import { DataDirLockedError, lockDataDir } from "../relay/store/data_dir_lock.ts";
import { checkPushCredentials } from "../relay/push/open.ts";
import { systemClock } from "../relay/base/clock.ts";
import postgres from "postgres";

type Check = { name: string; ok: boolean; detail: string; warn?: boolean };

/** How long doctor waits for its own NOTIFY to come back. */
const NOTIFY_TIMEOUT_MS = 3000;

/** Host or port patterns of transaction-mode poolers that break LISTEN and session locks. */
const POOLER = /-pooler\.|(^|\.)pgbouncer\.|:6543(\/|$)/;

const POOLER_HINT = "this looks like a connection pooler (PgBouncer, Supavisor, a Neon -pooler " +
  "host, Fly Managed Postgres' pgbouncer host): Sealpost needs a direct or session-mode URL for " +
  'LISTEN/NOTIFY and advisory locks (docs/deploy-fly.md, "Which database URL")';

/**
 * LISTENs on a fresh channel on one connection and NOTIFYs it from another, as the bus does
 * between instances; resolves with the round-trip time, or throws saying why none arrived.
 */
async function notifyRoundTrip(url: string): Promise<number> {
  const sql = postgres(url, {
    max: 2,
    onnotice: () => {},
    connect_timeout: 5,
    connection: { application_name: "sealpost-doctor" },
  });
  const channel = `sealpost_doctor_${crypto.randomUUID().replaceAll("-", "")}`;
  try {
    let heard: (value: number) => void = () => {};
    const arrived = new Promise<number>((resolve) => heard = resolve);
    const started = performance.now();
    await sql.listen(channel, () => heard(performance.now() - started));
    await sql.notify(channel, "ping");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), NOTIFY_TIMEOUT_MS);
    });
    const ms = await Promise.race([arrived, timeout]).finally(() => clearTimeout(timer));
    if (ms === null) {
      throw new Error(
        `no NOTIFY came back within ${NOTIFY_TIMEOUT_MS / 1000} s: live delivery between ` +
          "instances would not work; a transaction-mode pooler (PgBouncer, Supavisor port 6543, " +
          "a Neon -pooler host, Fly Managed Postgres' pgbouncer host) drops LISTEN: use the " +
          "direct URL",
      );
    }
    return ms;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

/** Runs every check; returns true when all pass. */
export async function doctor(config: Config, print: (line: string) => void): Promise<boolean> {
  const checks: Check[] = [];
  checks.push({
    name: "config",
    ok: true,
    detail:
      `listen ${config.host}:${config.port}, public url ${config.publicUrl}, registration ${config.registration}`,
  });

  try {
    // A running embedded relay owns its database: report it rather than open a second PGlite.
    const lock = config.databaseUrl ? null : await lockDataDir(config.dataDir, "doctor");
    const claim: OwnClaim = lock ? { kind: "locked", lock } : { kind: "server" };
    await withDatabase(config, "doctor", async (database) => {
      const applied = await appliedMigrations(database.db);
      const known = Object.keys(MIGRATIONS);
      await assertNotNewer(database.db);
      const pending = known.filter((name) => !applied.includes(name));
      checks.push({
        name: "database",
        ok: true,
        detail: `${database.kind} at ${database.location}; ${applied.length} migrations applied${
          pending.length
            ? `, ${pending.length} pending (run sealpost migrate or serve)`
            : ", up to date"
        }`,
      });
    }, claim);
  } catch (error) {
    if (error instanceof DataDirLockedError) {
      checks.push({
        name: "database",
        ok: true,
        detail:
          `embedded PGlite in ${config.dataDir}/pg, owned by sealpost ${error.holder.command} (pid ${
            error.holder.pid ?? "?"
          }); not opened here (its /readyz tells whether it is ready)`,
      });
    } else {
      const message = (error as Error).message;
      // PgBouncer refuses the startup parameters the relay sets (plan_cache_mode): say why.
      const pooler = /unsupported startup parameter/i.test(message) ||
        (config.databaseUrl !== undefined && POOLER.test(config.databaseUrl));
      checks.push({
        name: "database",
        ok: false,
        detail: pooler ? `${message}; ${POOLER_HINT}` : message,
      });
    }
  }

  const reachable = checks.some((c) => c.name === "database" && c.ok);
  if (config.databaseUrl && reachable) {
    const pooled = POOLER.test(config.databaseUrl);
    try {
      const ms = await notifyRoundTrip(config.databaseUrl);
      checks.push({
        name: "notify",
        ok: true,
        detail: `LISTEN/NOTIFY round trip in ${Math.round(ms)} ms${
          pooled ? " (the URL looks like a pooler's: make sure it is in session mode)" : ""
        }`,
        warn: pooled,
      });
    } catch (error) {
      checks.push({ name: "notify", ok: false, detail: (error as Error).message });
    }
  } else if (config.flyMachineId) {
    checks.push({
      name: "database",
      ok: true,
      warn: true,
      detail: "embedded PGlite on a Fly machine: each machine gets its own private database on " +
        "its ephemeral disk; set DATABASE_URL to a shared Postgres (docs/deploy-fly.md)",
    });
  }

  if (
    config.apnsKeyFile || config.apnsKey || config.fcmServiceAccountFile ||
    config.fcmServiceAccount
  ) {
    try {
      const kinds = await checkPushCredentials(config, systemClock);
      checks.push({ name: "push", ok: true, detail: `credentials load for ${kinds.join(", ")}` });
    } catch (error) {
      checks.push({ name: "push", ok: false, detail: (error as Error).message });
    }
  }

  if (config.blobStore === "fs") {
    const dir = `${config.dataDir}/blobs`;
    try {
      await Deno.mkdir(dir, { recursive: true });
      const probe = `${dir}/.doctor-${crypto.randomUUID()}`;
      await Deno.writeTextFile(probe, "ok");
      await Deno.remove(probe);
      checks.push({ name: "blob store", ok: true, detail: `filesystem at ${dir}, writable` });
    } catch (error) {
      checks.push({
        name: "blob store",
        ok: false,
        detail: `filesystem at ${dir}: ${(error as Error).message}`,
      });
    }
  } else {
    const store = openBlobStore(config);
    try {
      await store.check();
      checks.push({ name: "blob store", ok: true, detail: `${store.location}, reachable` });
    } catch (error) {
      checks.push({
        name: "blob store",
        ok: false,
        detail: `${store.location}: ${(error as Error).message}`,
      });
    }
  }

  for (const check of checks) {
    const status = !check.ok ? "FAIL" : check.warn ? "warn" : "ok  ";
    print(`${status} ${check.name.padEnd(11)} ${check.detail}`);
  }
  return checks.every((c) => c.ok);
}

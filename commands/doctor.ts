/**
 * @module
 * `sealpost doctor`: checks the configuration, the database (reachable, migrated, not newer
 * than this binary) and the blob store, and prints what it found, one line per check.
 */

import { openBlobStore } from "../relay/blobs/open.ts";
import type { Config } from "../relay/config/config.ts";
import { openDatabase } from "../relay/store/database.ts";
import { appliedMigrations, assertNotNewer } from "../relay/store/migrate.ts";
import { MIGRATIONS } from "../migrations/mod.ts";
import { DataDirLockedError, lockDataDir } from "../relay/store/data_dir_lock.ts";

type Check = { name: string; ok: boolean; detail: string };

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
    const database = await openDatabase(config);
    try {
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
    } finally {
      await database.close();
      lock?.release();
    }
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
      checks.push({ name: "database", ok: false, detail: (error as Error).message });
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
    print(`${check.ok ? "ok  " : "FAIL"} ${check.name.padEnd(11)} ${check.detail}`);
  }
  return checks.every((c) => c.ok);
}

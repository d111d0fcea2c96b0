/**
 * @module
 * Applies the migrations of `migrations/` at start and for `sealpost migrate`. Kysely's migrator
 * runs them in one transaction under a Postgres advisory lock, so several instances may start at
 * once. A database migrated by a newer Sealpost (a migration this binary does not know) is
 * refused with a clear message rather than run against a schema it does not understand.
 */

import { sql } from "kysely";
import { type Migration, Migrator, NO_MIGRATIONS } from "kysely/migration";
import { MIGRATIONS } from "../../migrations/mod.ts";
import type { Db } from "./database.ts";

/** Thrown when the database was migrated by a newer binary. */
export class SchemaTooNewError extends Error {
  override name = "SchemaTooNewError";
}

/** What a migration run did: migrations applied (`up`) and reverted (`down`), and where it ends. */
export type MigrationReport = { applied: string[]; reverted?: string[]; current: string | null };

const MIGRATION_TABLE = "sealpost_migrations";
const LOCK_TABLE = "sealpost_migrations_lock";

function migrator(db: Db, migrations: Record<string, Migration>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations) },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: LOCK_TABLE,
  });
}

/** Names of migrations recorded in the database, or [] for a fresh database. */
export async function appliedMigrations(db: Db): Promise<string[]> {
  const exists = await sql<{ exists: boolean }>`
    select to_regclass(${MIGRATION_TABLE}) is not null as exists`.execute(db);
  if (!exists.rows[0]?.exists) return [];
  const rows = await sql<{ name: string }>`
    select name from ${sql.table(MIGRATION_TABLE)} order by name`.execute(db);
  return rows.rows.map((r) => r.name);
}

/** Throws {@link SchemaTooNewError} if the database has migrations this binary lacks. */
export async function assertNotNewer(
  db: Db,
  migrations: Record<string, Migration> = MIGRATIONS,
): Promise<void> {
  const unknown = (await appliedMigrations(db)).filter((name) => !(name in migrations));
  if (unknown.length > 0) {
    throw new SchemaTooNewError(
      `Cannot use this database: it was migrated by a newer Sealpost (unknown migration ${
        unknown.join(", ")
      }); run that version or newer, or restore a backup`,
    );
  }
}

/**
 * Brings the schema up to date.
 *
 * @example
 * ```ts
 * const report = await migrate(db);
 * console.log(report.applied);
 * ```
 */
export async function migrate(
  db: Db,
  migrations: Record<string, Migration> = MIGRATIONS,
): Promise<MigrationReport> {
  await assertNotNewer(db, migrations);
  const { error, results } = await migrator(db, migrations).migrateToLatest();
  if (error) {
    throw new Error(`Cannot migrate the database: ${(error as Error).message ?? error}`);
  }
  const applied = (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
  const all = await appliedMigrations(db);
  return { applied, current: all.at(-1) ?? null };
}

/** True when every migration of this binary is applied. */
export async function isMigrated(
  db: Db,
  migrations: Record<string, Migration> = MIGRATIONS,
): Promise<boolean> {
  const applied = new Set(await appliedMigrations(db));
  return Object.keys(migrations).every((name) => applied.has(name));
}

/**
 * The migration `target` names: a full name (`0006_key_packages`) or its number (`6`, `0006`);
 * `0` means none (every migration reverted). Throws naming the known ones when none matches.
 */
export function resolveTarget(
  target: string,
  migrations: Record<string, Migration> = MIGRATIONS,
): string | null {
  const names = Object.keys(migrations);
  if (/^0*$/.test(target)) return null;
  const found = /^\d+$/.test(target)
    ? names.find((name) => Number(name.split("_")[0]) === Number(target))
    : names.find((name) => name === target);
  if (!found) {
    throw new Error(
      `Cannot migrate to '${target}': expected 0 or one of ${
        names.map((n) => `${Number(n.split("_")[0])} (${n})`).join(", ")
      }`,
    );
  }
  return found;
}

/**
 * Moves the schema to exactly `target` (a name from {@link resolveTarget}, or null for none):
 * pending migrations up to it are applied, later ones reverted newest first with their `down()`,
 * all in one transaction under the migration lock. For rolling back a deploy
 * (docs/operations.md): revert with the binary that has the migrations, then start the older one.
 *
 * @example
 * ```ts
 * await migrateTo(db, resolveTarget("7"));
 * ```
 */
export async function migrateTo(
  db: Db,
  target: string | null,
  migrations: Record<string, Migration> = MIGRATIONS,
): Promise<MigrationReport> {
  await assertNotNewer(db, migrations);
  const { error, results } = await migrator(db, migrations).migrateTo(target ?? NO_MIGRATIONS);
  if (error) {
    throw new Error(`Cannot migrate the database: ${(error as Error).message ?? error}`);
  }
  const done = (results ?? []).filter((r) => r.status === "Success");
  const all = await appliedMigrations(db);
  return {
    applied: done.filter((r) => r.direction === "Up").map((r) => r.migrationName),
    reverted: done.filter((r) => r.direction === "Down").map((r) => r.migrationName),
    current: all.at(-1) ?? null,
  };
}

/**
 * @module
 * The real Postgres of the benchmark: a throwaway cluster from the test helper (`initdb` into a
 * temp dir, run as user `postgres`). The helper configures `fsync = off`, `full_page_writes =
 * off` and `synchronous_commit = on`; {@link setFsync} switches fsync (and full-page writes) on
 * at run time with `ALTER SYSTEM` and a reload, so the same cluster measures both.
 */

import { type PostgresCluster, startPostgres } from "../tests/helpers/postgres.ts";

export type { PostgresCluster };
export { startPostgres };

/** The settings that decide what a commit costs. */
export type PostgresSettings = {
  version: string;
  fsync: string;
  synchronous_commit: string;
  full_page_writes: string;
  wal_sync_method: string;
  shared_buffers: string;
  data_dir_filesystem: string;
};

/** Reads the durability settings of the cluster. */
export async function postgresSettings(pg: PostgresCluster): Promise<PostgresSettings> {
  const show = (name: string) => pg.psql(`show ${name}`);
  const df = await new Deno.Command("df", { args: ["-T", pg.dataDir], stdout: "piped" }).output();
  const fsLine = new TextDecoder().decode(df.stdout).trim().split("\n")[1] ?? "";
  return {
    version: await show("server_version"),
    fsync: await show("fsync"),
    synchronous_commit: await show("synchronous_commit"),
    full_page_writes: await show("full_page_writes"),
    wal_sync_method: await show("wal_sync_method"),
    shared_buffers: await show("shared_buffers"),
    data_dir_filesystem: fsLine.split(/\s+/).slice(0, 2).join(" "),
  };
}

/** Turns fsync and full-page writes on or off (both reload without a restart). */
export async function setFsync(pg: PostgresCluster, on: boolean): Promise<void> {
  const value = on ? "on" : "off";
  await pg.psql(`alter system set fsync = ${value}`);
  await pg.psql(`alter system set full_page_writes = ${value}`);
  await pg.psql("select pg_reload_conf()");
  for (let i = 0; i < 50; i++) {
    if (await pg.psql("show fsync") === value) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Could not set fsync = ${value}`);
}

/** The postmaster's pid (to measure the CPU of Postgres and its backends). */
export function postmasterPid(pg: PostgresCluster): number {
  return Number(Deno.readTextFileSync(`${pg.dataDir}/postmaster.pid`).split("\n")[0]);
}

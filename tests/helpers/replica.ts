/**
 * @module
 * A real streaming read replica of a throwaway cluster: `pg_basebackup -R` from the primary,
 * started on its own port. Its WAL replay can be paused to make it lag on purpose.
 */

import { findPostgresBin, freePort, type PostgresCluster, runAsUser } from "./postgres.ts";

/** A running standby. */
export interface Replica {
  readonly port: number;
  url(name: string): string;
  /** Pauses or resumes WAL replay (the replica falls behind while paused). */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Waits until the replica has replayed everything the primary has written. */
  catchUp(primary: PostgresCluster): Promise<void>;
  destroy(): Promise<void>;
}

async function run(bin: string, args: string[], user: string | null): Promise<string> {
  const cmd = user
    ? new Deno.Command("runuser", {
      args: ["-u", user, "--", bin, ...args],
      stdout: "piped",
      stderr: "piped",
    })
    : new Deno.Command(bin, { args, stdout: "piped", stderr: "piped" });
  const out = await cmd.output();
  if (!out.success) throw new Error(`${bin} failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout).trim();
}

/** Starts a standby of `primary`. */
export async function startReplica(primary: PostgresCluster): Promise<Replica> {
  const bin = findPostgresBin()!;
  const user = runAsUser();
  const root = await Deno.makeTempDir({ prefix: "sealpost-replica-" });
  if (user) await Deno.chmod(root, 0o777);
  const dataDir = `${root}/data`;
  await run(`${bin}/pg_basebackup`, [
    "-h",
    "127.0.0.1",
    "-p",
    String(primary.port),
    "-U",
    "postgres",
    "-D",
    dataDir,
    "-R",
    "-X",
    "stream",
    "--checkpoint=fast",
  ], user);
  const port = freePort();
  const sockDir = `${root}/sock`;
  await Deno.mkdir(sockDir);
  if (user) await Deno.chmod(sockDir, 0o777);
  await Deno.writeTextFile(
    `${dataDir}/postgresql.auto.conf`,
    `port = ${port}\nunix_socket_directories = '${sockDir}'\nhot_standby = on\n`,
    { append: true },
  );
  const args = ["-D", dataDir];
  const process = (user
    ? new Deno.Command("runuser", {
      args: ["-u", user, "--", `${bin}/postgres`, ...args],
      stdout: "null",
      stderr: "null",
    })
    : new Deno.Command(`${bin}/postgres`, { args, stdout: "null", stderr: "null" })).spawn();
  const psql = (sql: string) =>
    run(
      `${bin}/psql`,
      ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-qtA", "-c", sql],
      null,
    );
  for (let i = 0; i < 200; i++) {
    try {
      await psql("select 1");
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    port,
    url: (name) => `postgres://postgres@127.0.0.1:${port}/${name}`,
    pause: async () => void await psql("select pg_wal_replay_pause()"),
    resume: async () => void await psql("select pg_wal_replay_resume()"),
    catchUp: async (p) => {
      const target = await p.psql("select pg_current_wal_lsn()");
      for (let i = 0; i < 200; i++) {
        const ok = await psql(`select pg_last_wal_replay_lsn() >= '${target}'::pg_lsn`);
        if (ok === "t") return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error("replica did not catch up");
    },
    destroy: async () => {
      try {
        // runuser does not pass signals on: stop the postmaster itself.
        const pid = Number((await Deno.readTextFile(`${dataDir}/postmaster.pid`)).split("\n")[0]);
        Deno.kill(pid, "SIGQUIT");
      } catch {
        try {
          process.kill("SIGQUIT");
        } catch { /* gone */ }
      }
      await process.status;
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * @module
 * A real PgBouncer (Debian's `pgbouncer`) in front of the module's throwaway Postgres, in
 * transaction pooling mode as Neon, Supabase (port 6543) and Fly Managed Postgres run theirs: for
 * proving that `doctor` recognises a pooled URL. Runs as the same unprivileged user as Postgres
 * when the tests run as root; outside CI the tests that need it skip when it is not installed,
 * under `CI=true` they fail.
 */

import { freePort } from "./postgres.ts";

function binary(): string | null {
  for (const path of ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch { /* keep looking */ }
  }
  return null;
}

/** Why PgBouncer tests cannot run here, or null. */
export function pgbouncerUnavailable(): string | null {
  if (binary()) return null;
  const why = "pgbouncer is not installed (apt-get install pgbouncer)";
  if (Deno.env.get("CI") === "true") throw new Error(`CI=true but ${why}`);
  return why;
}

/** A running PgBouncer. */
export type Bouncer = { url: (database: string) => string; stop(): Promise<void> };

/**
 * Starts PgBouncer on a free loopback port in front of the Postgres at `postgresUrl` (trust
 * auth, user `postgres`), in transaction mode; `ignore` lists startup parameters to accept.
 */
export async function startPgbouncer(postgresUrl: string, ignore: string[] = []): Promise<Bouncer> {
  const pg = new URL(postgresUrl);
  const dir = await Deno.makeTempDir({ prefix: "sealpost-pgbouncer-" });
  await Deno.chmod(dir, 0o755);
  const port = freePort();
  await Deno.writeTextFile(`${dir}/users.txt`, `"postgres" ""\n`);
  await Deno.writeTextFile(
    `${dir}/pgbouncer.ini`,
    [
      "[databases]",
      `* = host=127.0.0.1 port=${pg.port}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${dir}/users.txt`,
      "pool_mode = transaction",
      ignore.length ? `ignore_startup_parameters = ${ignore.join(",")}` : "",
      "",
    ].join("\n"),
  );
  const bin = binary() ?? "pgbouncer";
  const asRoot = Deno.uid() === 0;
  const child = new Deno.Command(asRoot ? "runuser" : bin, {
    args: asRoot ? ["-u", "postgres", "--", bin, `${dir}/pgbouncer.ini`] : [`${dir}/pgbouncer.ini`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  // Ready once it accepts connections (bounded: 10 s).
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

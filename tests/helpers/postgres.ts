/**
 * @module
 * A throwaway real PostgreSQL cluster for tests: `initdb` into a temp dir, `postgres` on a free
 * loopback port, run as an unprivileged user when the tests run as root. One cluster per test
 * module; each test takes a fresh database from it. Outside CI the tests that need it skip, with
 * a reason, when no Postgres binaries are found; under `CI=true` they fail instead.
 */

const CANDIDATE_DIRS = [
  Deno.env.get("SEALPOST_TEST_PG_BIN"),
  "/usr/lib/postgresql/17/bin",
  "/usr/lib/postgresql/16/bin",
  "/usr/lib/postgresql/15/bin",
  "/usr/lib/postgresql/14/bin",
].filter((d): d is string => !!d);

/** Finds a directory holding `initdb` and `postgres`, or null. */
export function findPostgresBin(): string | null {
  for (const dir of CANDIDATE_DIRS) {
    try {
      Deno.statSync(`${dir}/initdb`);
      Deno.statSync(`${dir}/postgres`);
      return dir;
    } catch { /* try the next */ }
  }
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      Deno.statSync(`${dir}/initdb`);
      return dir;
    } catch { /* keep looking */ }
  }
  return null;
}

/** Why Postgres tests cannot run here, or null when they can. */
export function postgresUnavailable(): string | null {
  return findPostgresBin() ? null : "no PostgreSQL server binaries (initdb, postgres) found";
}

/** A free TCP port on loopback. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function isRoot(): boolean {
  return Deno.uid?.() === 0;
}

export function runAsUser(): string | null {
  if (!isRoot()) return null;
  for (const user of ["postgres", "nobody"]) {
    const out = new Deno.Command("id", { args: ["-u", user], stdout: "null", stderr: "null" })
      .outputSync();
    if (out.success) return user;
  }
  throw new Error("Running as root and no unprivileged user (postgres, nobody) to run Postgres");
}

function command(bin: string, args: string[], user: string | null): Deno.Command {
  if (user) {
    return new Deno.Command("runuser", {
      args: ["-u", user, "--", bin, ...args],
      stdout: "piped",
      stderr: "piped",
    });
  }
  return new Deno.Command(bin, { args, stdout: "piped", stderr: "piped" });
}

/** A running throwaway cluster. */
export interface PostgresCluster {
  readonly port: number;
  readonly dataDir: string;
  /** A URL for database `name` (default `postgres`). */
  url(name?: string): string;
  /** Creates a fresh empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /** Runs SQL as the superuser through psql against `name`. */
  psql(sql: string, name?: string): Promise<string>;
  /** Stops the server (fast), keeping the data directory. */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops the server and deletes the data. */
  destroy(): Promise<void>;
  /** The same, synchronously, for an `unload` handler (immediate shutdown). */
  destroySync(): void;
}

let dbCounter = 0;

/**
 * Starts a cluster. Call `destroy()` when done.
 *
 * @example
 * ```ts
 * const pg = await startPostgres();
 * const url = await pg.createDatabase();
 * ```
 */
export async function startPostgres(
  options: { root?: string } = {},
): Promise<PostgresCluster> {
  const bin = findPostgresBin();
  if (!bin) throw new Error(postgresUnavailable()!);
  const user = runAsUser();
  // `root` (an empty directory) puts the cluster on a file system of the test's choosing.
  const root = options.root ?? await Deno.makeTempDir({ prefix: "sealpost-pg-" });
  const dataDir = `${root}/data`;
  const socketDir = `${root}/sock`;
  await Deno.mkdir(socketDir);
  if (user) {
    await Deno.chmod(root, 0o777);
    await Deno.chmod(socketDir, 0o777);
  }
  const init = await command(`${bin}/initdb`, [
    "-D",
    dataDir,
    "-U",
    "postgres",
    "--auth=trust",
    "--no-sync",
    "-E",
    "UTF8",
    "--locale=C",
  ], user).output();
  if (!init.success) throw new Error(`initdb failed: ${new TextDecoder().decode(init.stderr)}`);
  const port = freePort();
  const conf = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${socketDir}'`,
    "fsync = off",
    "synchronous_commit = on",
    "full_page_writes = off",
    "max_connections = 300",
    "shared_buffers = 128MB",
  ].join("\n");
  await Deno.writeTextFile(`${dataDir}/postgresql.auto.conf`, conf + "\n", { append: true });

  let process: Deno.ChildProcess | null = null;
  const start = async () => {
    const cmd = user
      ? new Deno.Command("runuser", {
        args: ["-u", user, "--", `${bin}/postgres`, "-D", dataDir],
        stdout: "null",
        stderr: "piped",
      })
      : new Deno.Command(`${bin}/postgres`, {
        args: ["-D", dataDir],
        stdout: "null",
        stderr: "piped",
      });
    process = cmd.spawn();
    process.stderr.pipeTo(new WritableStream({ write() {} })).catch(() => {});
    for (let i = 0; i < 200; i++) {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conn.close();
        // Accepting TCP is not yet accepting queries; probe with psql.
        const probe = await new Deno.Command(`${bin}/psql`, {
          args: ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-c", "select 1", "-qtA"],
          stdout: "null",
          stderr: "null",
        }).output();
        if (probe.success) return;
      } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("postgres did not start within 10 s");
  };
  const stop = async (mode: "fast" | "immediate" = "fast") => {
    if (!process) return;
    const p = process as Deno.ChildProcess;
    process = null;
    // Signal the postmaster itself, by the pid it wrote: a `runuser` wrapper would turn any
    // signal into a smart shutdown (SIGTERM) that waits for clients, then a SIGKILL.
    const pid = postmasterPid(dataDir);
    try {
      if (pid) Deno.kill(pid, mode === "immediate" ? "SIGQUIT" : "SIGINT");
      else p.kill(mode === "immediate" ? "SIGQUIT" : "SIGINT");
    } catch { /* already gone */ }
    await p.status;
  };
  await start();

  const url = (name = "postgres") => `postgres://postgres@127.0.0.1:${port}/${name}`;
  const psql = async (sql: string, name = "postgres") => {
    const out = await new Deno.Command(`${bin}/psql`, {
      args: [
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-U",
        "postgres",
        "-d",
        name,
        "-qtA",
        "-c",
        sql,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`psql failed: ${new TextDecoder().decode(out.stderr)}`);
    return new TextDecoder().decode(out.stdout).trim();
  };
  const cluster: PostgresCluster = {
    port,
    dataDir,
    url,
    psql,
    createDatabase: async () => {
      const name = `t${Date.now().toString(36)}_${++dbCounter}`;
      await psql(`create database ${name}`);
      return url(name);
    },
    stop,
    start,
    destroy: async () => {
      await stop("immediate");
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
    destroySync: () => {
      const pid = postmasterPid(dataDir);
      if (pid) {
        try {
          Deno.kill(pid, "SIGQUIT");
        } catch { /* already gone */ }
        // An immediate shutdown takes milliseconds; wait for it (bounded) before removing files.
        const deadline = Date.now() + 5000;
        while (Date.now() < deadline && processAlive(pid)) sleepSync(20);
      }
      try {
        Deno.removeSync(root, { recursive: true });
      } catch { /* best effort */ }
    },
  };
  return cluster;
}

/** The postmaster's pid from `postmaster.pid`, or null when it is not running. */
function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(Deno.readTextFileSync(`${dataDir}/postmaster.pid`).split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat); // a zombie has exited
  } catch {
    return false;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

let shared: Promise<PostgresCluster> | null = null;

/**
 * The module's shared cluster, started on first use; stopped and deleted when the test module
 * unloads.
 */
export function sharedPostgres(): Promise<PostgresCluster> {
  if (!shared) {
    shared = startPostgres();
    shared.then((cluster) => {
      // unload cannot await: shut down and remove the files synchronously.
      globalThis.addEventListener("unload", () => cluster.destroySync());
    }).catch(() => {});
  }
  return shared;
}

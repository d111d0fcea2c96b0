/**
 * @module
 * A real multi-instance deployment on loopback for topology tests: several `sealpost serve`
 * processes on one Postgres, behind an haproxy load balancer that health-checks `/readyz`.
 * Instances can be killed (`kill -9`) and started again. Outside CI the tests skip when haproxy
 * is not installed; under `CI=true` they fail instead.
 */

import { freePort } from "./postgres.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Where haproxy is, or null. */
export function findHaproxy(): string | null {
  for (const path of ["/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"]) {
    try {
      Deno.statSync(path);
      return path;
    } catch { /* next */ }
  }
  return null;
}

/** Why topology tests cannot run here, or null. */
export function topologyUnavailable(): string | null {
  const why = findHaproxy() ? null : "haproxy is not installed (apt-get install haproxy)";
  if (why && Deno.env.get("CI") === "true") throw new Error(`CI=true but ${why}`);
  return why;
}

/** One relay process. */
export class Instance {
  process: Deno.ChildProcess | null = null;
  readonly url: string;
  constructor(
    readonly id: string,
    readonly port: number,
    private readonly env: Record<string, string>,
    readonly logFile: string,
    /** The program to run: `main.ts`, or a bundled artifact. */
    private readonly entry = "main.ts",
    /** The working directory (a bundle runs from a folder with no node_modules). */
    private readonly cwd = ROOT,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Starts the process and waits for `/readyz`. */
  async start(): Promise<void> {
    const log = await Deno.open(this.logFile, { write: true, create: true, append: true });
    this.process = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", this.entry, "serve"],
      cwd: this.cwd,
      env: {
        ...this.env,
        PORT: String(this.port),
        SEALPOST_HOST: "127.0.0.1",
        SEALPOST_INSTANCE_ID: this.id,
        SEALPOST_LOG_FORMAT: "json",
      },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.process.stdout.pipeTo(log.writable, { preventClose: true }).catch(() => {});
    const errLog = await Deno.open(this.logFile, { write: true, create: true, append: true });
    this.process.stderr.pipeTo(errLog.writable).catch(() => {});
    await waitReady(this.url, 30_000);
  }

  /** `kill -9`. */
  async kill(): Promise<void> {
    if (!this.process) return;
    this.process.kill("SIGKILL");
    await this.process.status;
    this.process = null;
  }

  /** SIGTERM and wait (graceful drain); returns the exit code. */
  async terminate(): Promise<number> {
    if (!this.process) return 0;
    this.process.kill("SIGTERM");
    const status = await this.process.status;
    this.process = null;
    return status.code;
  }

  /** GET /readyz status. */
  async readyz(): Promise<number> {
    try {
      const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      return res.status;
    } catch {
      return 0;
    }
  }
}

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.status === 200) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not become ready in ${timeoutMs} ms`);
}

/** A running topology. */
export interface Topology {
  /** The load balancer's URL. */
  readonly url: string;
  readonly wsUrl: string;
  readonly instances: Instance[];
  readonly dir: string;
  stop(): Promise<void>;
}

/**
 * Starts `n` relay processes on `databaseUrl` and haproxy in front of them.
 *
 * @example
 * ```ts
 * const topo = await startTopology(await pg.createDatabase(), 3);
 * ```
 */
export async function startTopology(
  databaseUrl: string,
  n = 3,
  env: Record<string, string> = {},
): Promise<Topology> {
  const haproxy = findHaproxy();
  if (!haproxy) throw new Error("haproxy is not installed");
  const dir = await Deno.makeTempDir({ prefix: "sealpost-topology-" });
  const instances: Instance[] = [];
  for (let i = 0; i < n; i++) {
    instances.push(
      new Instance(`relay-${i + 1}`, freePort(), {
        DATABASE_URL: databaseUrl,
        SEALPOST_DATA_DIR: `${dir}/data-${i + 1}`,
        SEALPOST_RATE_SEND: "off",
        SEALPOST_RATE_AUTH: "off",
        SEALPOST_RATE_POLL: "off",
        SEALPOST_LOG_LEVEL: "info",
        ...env,
      }, `${dir}/relay-${i + 1}.log`),
    );
  }
  // The first instance migrates; the others start together to exercise the migration lock.
  await instances[0].start();
  await Promise.all(instances.slice(1).map((i) => i.start()));

  const lbPort = freePort();
  const config = `global
  maxconn 4000
defaults
  mode http
  timeout connect 1s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
  retries 2
  option redispatch
frontend relays
  bind 127.0.0.1:${lbPort}
  default_backend relays
backend relays
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 300ms fall 2 rise 2
${instances.map((i) => `  server ${i.id} 127.0.0.1:${i.port} check`).join("\n")}
`;
  await Deno.writeTextFile(`${dir}/haproxy.cfg`, config);
  const lb = new Deno.Command(haproxy, {
    args: ["-f", `${dir}/haproxy.cfg`, "-db"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  lb.stderr.pipeTo(new WritableStream({ write() {} })).catch(() => {});
  const url = `http://127.0.0.1:${lbPort}`;
  await waitReady(url, 10_000);
  return {
    url,
    wsUrl: `ws://127.0.0.1:${lbPort}/v1/ws`,
    instances,
    dir,
    stop: async () => {
      try {
        lb.kill("SIGKILL");
        await lb.status;
      } catch { /* gone */ }
      await Promise.all(instances.map((i) => i.kill()));
      if (!Deno.env.get("SEALPOST_KEEP_TOPOLOGY")) {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
  };
}

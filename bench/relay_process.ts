/**
 * @module
 * The relay under test, run as its own process (`deno run -A main.ts serve`) so its memory and
 * CPU can be read from `/proc` apart from the load generator's. Rate limits are off and logs
 * are at `warn`; the last lines of its stderr are kept for the report.
 */

import { freePort } from "../tests/helpers/postgres.ts";
import { sleep } from "./stats.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** How to start a relay. */
export type RelayProcessOptions = {
  /** Server Postgres; unset → embedded PGlite in `dataDir`. */
  databaseUrl?: string;
  /** The data directory (PGlite and blobs); a fresh temp dir when unset. */
  dataDir?: string;
  /** Write a V8 CPU profile into this directory when the relay exits. */
  cpuProfDir?: string;
  /** Open the relay's V8 inspector on this loopback port (heap readings). */
  inspectPort?: number;
  /** Extra environment. */
  env?: Record<string, string>;
};

/** A running relay process. */
export interface RelayProcess {
  readonly pid: number;
  readonly url: string;
  readonly dataDir: string;
  /** Prometheus samples by full name with labels, e.g. `sealpost_deliveries_total{path="live"}`. */
  metrics(): Promise<Map<string, number>>;
  /** Last stderr lines (warnings and errors). */
  log(): string[];
  /** SIGTERM (the relay drains), then waits; SIGKILL after 15 s. */
  stop(): Promise<void>;
}

/**
 * Starts a relay and waits until `/readyz` answers 200.
 *
 * @example
 * ```ts
 * const relay = await startRelay({ databaseUrl });
 * await relay.stop();
 * ```
 */
export async function startRelay(options: RelayProcessOptions = {}): Promise<RelayProcess> {
  const port = freePort();
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "sealpost-bench-" });
  const args = ["run", "-A"];
  if (options.cpuProfDir) args.push("--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`);
  if (options.inspectPort) args.push(`--inspect=127.0.0.1:${options.inspectPort}`);
  args.push("main.ts", "serve");
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: {
      PORT: String(port),
      SEALPOST_HOST: "127.0.0.1",
      SEALPOST_DATA_DIR: dataDir,
      DATABASE_URL: options.databaseUrl ?? "",
      SEALPOST_RATE_SEND: "off",
      SEALPOST_RATE_AUTH: "off",
      SEALPOST_RATE_POLL: "off",
      SEALPOST_LOG_LEVEL: "warn",
      SEALPOST_LOG_FORMAT: "json",
      SEALPOST_ADMIN_PASSWORD: "bench-only-password",
      // Every bench client connects from this one machine, up to 100 sockets at once before
      // `auth`: the per-address cap on unauthenticated sockets is for the internet, not for it.
      SEALPOST_MAX_PENDING_SOCKETS: "100000",
      SEALPOST_MAX_PENDING_SOCKETS_PER_IP: "100000",
      ...options.env,
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let partial = "";
  child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write(chunk) {
        const parts = (partial + chunk).split("\n");
        partial = parts.pop() ?? "";
        for (const line of parts) {
          lines.push(line.slice(0, 500));
          if (lines.length > 50) lines.shift();
        }
      },
    }),
  ).catch(() => {});
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`The relay exited during start: ${lines.join("\n")}`);
    try {
      const response = await fetch(`${url}/readyz`);
      await response.body?.cancel();
      if (response.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`The relay did not become ready within 60 s: ${lines.join("\n")}`);
    }
    await sleep(100);
  }
  return {
    pid: child.pid,
    url,
    dataDir,
    metrics: async () => parseMetrics(await (await fetch(`${url}/metrics`)).text()),
    log: () => [...lines],
    stop: async () => {
      if (exited) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 15_000);
      await status;
      clearTimeout(timer);
    },
  };
}

/** Parses Prometheus text into `name{labels}` → value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/** What changed in the relay's own counters between two scrapes. */
export type MetricsDelta = {
  commit_batches: number;
  commit_batch_mean: number;
  /** Batches of at most 1, 10, 100 and 1000 sends (cumulative). */
  commit_batch_le: Record<string, number>;
  commit_wait_mean_ms: number;
  messages_accepted: number;
  deliveries_live: number;
  deliveries_replay: number;
  ws_closes: Record<string, number>;
  rejected: Record<string, number>;
};

/** The difference of two scrapes, summarised. */
export function metricsDelta(before: Map<string, number>, after: Map<string, number>) {
  const d = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  const batches = d("sealpost_group_commit_batch_size_count");
  const sends = d("sealpost_group_commit_batch_size_sum");
  const waits = d("sealpost_send_commit_seconds_count");
  const labelled = (prefix: string, label: string) => {
    const out: Record<string, number> = {};
    for (const key of after.keys()) {
      if (!key.startsWith(prefix + "{")) continue;
      const value = d(key);
      const name = new RegExp(`${label}="([^"]*)"`).exec(key)?.[1] ?? key;
      if (value) out[name] = value;
    }
    return out;
  };
  const le: Record<string, number> = {};
  for (const bound of ["1", "10", "100", "1000"]) {
    le[bound] = d(`sealpost_group_commit_batch_size_bucket{le="${bound}"}`);
  }
  const delta: MetricsDelta = {
    commit_batches: batches,
    commit_batch_mean: batches ? Math.round(sends / batches * 10) / 10 : 0,
    commit_batch_le: le,
    commit_wait_mean_ms: waits
      ? Math.round(d("sealpost_send_commit_seconds_sum") / waits * 1000 * 100) / 100
      : 0,
    messages_accepted: d("sealpost_messages_accepted_total"),
    deliveries_live: d('sealpost_deliveries_total{path="live"}'),
    deliveries_replay: d('sealpost_deliveries_total{path="replay"}'),
    ws_closes: labelled("sealpost_websocket_closes_total", "code"),
    rejected: labelled("sealpost_messages_rejected_total", "reason"),
  };
  return delta;
}

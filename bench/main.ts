/**
 * @module
 * `deno task bench`: the Sealpost load benchmark. Runs the relay as a separate process against
 * a throwaway real Postgres (or embedded PGlite), drives it with SDK sessions from this
 * process, and measures in the same run the raw ceilings it is compared with (a bare Deno
 * WebSocket server; batched INSERT and COPY into the same Postgres; PGlite inserts). Writes
 * `bench/results/<timestamp>.json` and prints a table. See `bench/README.md`.
 *
 * @example
 * ```sh
 * deno task bench                                   # everything (≈10 minutes)
 * deno task bench --quick                           # a smaller run (< 2 minutes)
 * deno task bench --scenario fanout --rate 5000 --duration 15
 * deno task bench --scenario idle --connections 10000
 * deno task bench --scenario abuse                  # 50 × 64 MiB bodies + 1,000 silent sockets
 * ```
 */

import { parseArgs } from "node:util";
import { type AbuseResult, abuseScenario, abuseTable } from "./abuse.ts";
import {
  type CatchupClient,
  type CatchupResult,
  catchupScenario,
  type CatchupSpec,
  replayReadCeiling,
} from "./catchup.ts";
import { type CommitCeiling, commitCeiling } from "./commit_ceiling.ts";
import { type Fleet, measureRate, type RateResult, relayFleet } from "./fanout.ts";
import { type FarRun, farRun } from "./far.ts";
import { type GrowthResult, growthScenario } from "./growth.ts";
import { overloadLine, type OverloadResult, overloadScenario } from "./overload.ts";
import { queueHeapLine, type QueueHeapResult, queueHeapScenario } from "./queue_heap.ts";
import { type IdleResult, idleScenario } from "./idle.ts";
import { bodyChars } from "./load.ts";
import {
  type PostgresCluster,
  postgresSettings,
  postmasterPid,
  setFsync,
  startPostgres,
} from "./postgres.ts";
import { summarizeProfileDir } from "./profile.ts";
import { pgliteCeiling, postgresCeiling, postgresReadCeiling } from "./raw_db.ts";
import {
  broadcastClients,
  closeSockets,
  echoCeiling,
  idleCeiling,
  pushCeiling,
  startRawServer,
} from "./raw_ws_client.ts";
import { type RelayProcess, startRelay } from "./relay_process.ts";
import { catchupTable, type FanoutRow, fanoutTable, idleTable } from "./report.ts";
import type { AckMode } from "./sessions.ts";
import { sleep } from "./stats.ts";
import { loadAverage, machineInfo } from "./system.ts";

const SCENARIOS = [
  "raw",
  "fanout",
  "pglite",
  "catchup",
  "idle",
  "abuse",
  "far",
  "growth",
  "overload",
  "queue",
] as const;
type Scenario = typeof SCENARIOS[number];

const USAGE = `Usage: deno task bench [--flags]

  --scenario LIST        comma-separated: ${SCENARIOS.join(", ")} (default: all)
  --quick                a smaller run that finishes in about 2 minutes
  --rate LIST            fan-out rates on Postgres, msg/s (default 1000,2500,5000,10000)
  --fsync-rate LIST      rates rerun with Postgres fsync on (default 5000,10000, or none when
                         --rate is given; "" for none)
  --pglite-rate LIST     fan-out rates on PGlite (default 1000,2000,3000,5000)
  --duration S           seconds per rate (default 15)
  --groups N             groups in the fan-out (default 100)
  --group-size N         member devices per group (default 6)
  --ack MODE             sdk (the SDK's coalesced acks) | every (one ack per message) | none
                         (default sdk)
  --body-bytes N         message body size, decoded (default 64)
  --connections N        idle connections (default 10000)
  --idle-seconds S       idle: the window over which the idle relay's CPU is measured (default 60)
  --far-delay MS         far: delay each way between the relay and Postgres (default 40)
  --far-sends N          far: sequential HTTP sends timed (default 30)
  --overload-window N    overload: sends each session keeps in flight for 10 s to find what
                         the relay sustains (acked/s), with Postgres fsync on (default 4)
  --overload-factor X    overload: multiple of the sustained rate then offered (default 2)
  --overload-rate N      overload: offer N msg/s instead (a closed-loop probe can read low when
                         the generator, not the relay, limits it)
  --overload-seconds S   overload: how long it is offered (default 30)
  --overload-groups N    overload: groups of --group-size senders (default 50)
  --catchup N            stored messages to replay (default 100000)
  --catchup-client LIST  who replays: sdk (SDK session, batched \`msgs\` frames), frames (a bare
                         client, one \`msg\` frame per message, as the peer harness); default both
  --messages N           growth: filler messages in the table (default 100000)
  --growth-groups N      growth: filler groups (default 10000)
  --growth-rate N        growth: acked sends per second while measuring (default 500)
  --growth-url URL       growth: an existing Postgres database to fill once and reuse (default: a
                         fresh database of this run's cluster, with fsync on)
  --abuse-clients N      abuse: clients each sending one big body (default 50)
  --abuse-body-mib N     abuse: size of each body in MiB (default 64)
  --abuse-sockets N      abuse: WebSockets that connect and never authenticate (default 1000)
  --abuse-frame-kib N    abuse, second pass (per-address cap lifted): a frame of N KiB each
                         socket sends before auth (default 256)
  --plan-cache-mode M    set plan_cache_mode on the relay's Postgres database (an experiment:
                         force_custom_plan avoids stale generic plans; default: Postgres's auto)
  --cpu-prof             write a CPU profile of the Postgres fan-out (and catch-up, idle and
                         overload) relay and summarise it
  --wait-load X          first wait (up to --wait-max s) until the 1-min load is below X
  --wait-max S           (default 600)
  --out FILE             result file (default bench/results/<timestamp>.json)`;

/** Parsed command line. */
type Options = {
  scenarios: Scenario[];
  quick: boolean;
  rates: number[];
  fsyncRates: number[];
  /** Rates only the bare WebSocket broadcast runs (to find its ceiling). */
  rawExtraRates: number[];
  pgliteRates: number[];
  durationS: number;
  groups: number;
  groupSize: number;
  ack: AckMode;
  bodyBytes: number;
  connections: number;
  idleSeconds: number;
  farDelayMs: number;
  farSends: number;
  overloadWindow: number;
  overloadRate: number | null;
  overloadFactor: number;
  overloadSeconds: number;
  overloadGroups: number;
  catchup: number;
  catchupClients: CatchupClient[];
  messages: number;
  growthGroups: number;
  growthRate: number;
  growthUrl: string | null;
  abuseClients: number;
  abuseBodyMiB: number;
  abuseSockets: number;
  abuseFrameKiB: number;
  cpuProf: boolean;
  planCacheMode: string | null;
  waitLoad: number | null;
  waitMax: number;
  out: string;
};

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      scenario: { type: "string" },
      quick: { type: "boolean" },
      rate: { type: "string" },
      "fsync-rate": { type: "string" },
      "pglite-rate": { type: "string" },
      duration: { type: "string" },
      groups: { type: "string" },
      "group-size": { type: "string" },
      ack: { type: "string" },
      "body-bytes": { type: "string" },
      connections: { type: "string" },
      "far-delay": { type: "string" },
      "far-sends": { type: "string" },
      "overload-window": { type: "string" },
      "overload-rate": { type: "string" },
      "overload-factor": { type: "string" },
      "overload-seconds": { type: "string" },
      "overload-groups": { type: "string" },
      catchup: { type: "string" },
      "catchup-client": { type: "string" },
      messages: { type: "string" },
      "growth-groups": { type: "string" },
      "growth-rate": { type: "string" },
      "growth-url": { type: "string" },
      "abuse-clients": { type: "string" },
      "abuse-body-mib": { type: "string" },
      "abuse-sockets": { type: "string" },
      "abuse-frame-kib": { type: "string" },
      "cpu-prof": { type: "boolean" },
      "idle-seconds": { type: "string" },
      "plan-cache-mode": { type: "string" },
      "wait-load": { type: "string" },
      "wait-max": { type: "string" },
      out: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const quick = values.quick === true;
  const list = (text: string | undefined, fallback: number[]) =>
    text === undefined ? fallback : text.split(",").filter(Boolean).map(positive);
  const scenarios = (values.scenario?.split(",") ?? [...SCENARIOS]) as Scenario[];
  for (const s of scenarios) {
    if (!SCENARIOS.includes(s)) throw new Error(`Unknown scenario '${s}'; expected ${SCENARIOS}`);
  }
  const ack = (values.ack ?? "sdk") as AckMode;
  if (!["sdk", "every", "none"].includes(ack)) {
    throw new Error(`Cannot parse --ack: expected sdk, every or none, got '${ack}'`);
  }
  const catchupClients = (values["catchup-client"] ?? "sdk,frames").split(",") as CatchupClient[];
  for (const c of catchupClients) {
    if (c !== "sdk" && c !== "frames") throw new Error(`Cannot parse --catchup-client: '${c}'`);
  }
  const stamp = new Date().toISOString().replace(/[:]/g, "").replace(/\..*$/, "");
  return {
    scenarios,
    quick,
    rates: list(values.rate, quick ? [1000, 5000] : [1000, 2500, 5000, 10000]),
    // An explicit --rate runs just those rates unless --fsync-rate asks for more.
    fsyncRates: list(
      values["fsync-rate"],
      values.rate !== undefined ? [] : quick ? [5000] : [5000, 10000],
    ),
    rawExtraRates: values.rate !== undefined || quick ? [] : [20_000],
    pgliteRates: list(values["pglite-rate"], quick ? [3000] : [1000, 2000, 3000, 5000]),
    durationS: positive(values.duration ?? (quick ? "5" : "15")),
    groups: positive(values.groups ?? "100"),
    groupSize: positive(values["group-size"] ?? "6"),
    ack,
    bodyBytes: positive(values["body-bytes"] ?? "64"),
    connections: positive(values.connections ?? (quick ? "2000" : "10000")),
    idleSeconds: positive(values["idle-seconds"] ?? "60"),
    farDelayMs: positive(values["far-delay"] ?? "40"),
    farSends: positive(values["far-sends"] ?? "30"),
    overloadWindow: positive(values["overload-window"] ?? "4"),
    overloadRate: values["overload-rate"] === undefined ? null : positive(values["overload-rate"]),
    overloadFactor: positive(values["overload-factor"] ?? "2"),
    overloadSeconds: positive(values["overload-seconds"] ?? "30"),
    overloadGroups: positive(values["overload-groups"] ?? "50"),
    catchup: positive(values.catchup ?? "100000"),
    catchupClients,
    messages: positive(values.messages ?? "100000"),
    growthGroups: positive(values["growth-groups"] ?? "10000"),
    growthRate: positive(values["growth-rate"] ?? "500"),
    growthUrl: values["growth-url"] ?? null,
    abuseClients: positive(values["abuse-clients"] ?? "50"),
    abuseBodyMiB: positive(values["abuse-body-mib"] ?? "64"),
    abuseSockets: positive(values["abuse-sockets"] ?? "1000"),
    abuseFrameKiB: positive(values["abuse-frame-kib"] ?? "256"),
    cpuProf: values["cpu-prof"] === true,
    planCacheMode: values["plan-cache-mode"] ?? null,
    waitLoad: values["wait-load"] === undefined ? null : Number(values["wait-load"]),
    waitMax: positive(values["wait-max"] ?? "600"),
    out: values.out ?? new URL(`./results/${stamp}.json`, import.meta.url).pathname,
  };
}

function positive(text: string): number {
  const n = Number(text);
  if (!(n > 0)) throw new Error(`Expected a positive number, got '${text}'`);
  return n;
}

function farLine(run: FarRun): string {
  const l = run.latency;
  const w = run.ws_latency;
  return `  delay ${run.delay_ms_each_way} ms each way: HTTP p50 ${l.p50_ms} ms, p95 ${l.p95_ms} ms` +
    (run.round_trips_p50 === null ? "" : ` (${run.round_trips_p50} round trips)`) +
    `; WebSocket p50 ${w.p50_ms} ms, p95 ${w.p95_ms} ms` +
    (run.ws_round_trips_p50 === null ? "" : ` (${run.ws_round_trips_p50} round trips)`) +
    `; ${l.count} sends each (load ${run.loadavg_before})`;
}

async function waitForQuiet(threshold: number, maxS: number): Promise<number> {
  const deadline = Date.now() + maxS * 1000;
  let load = loadAverage()[0];
  while (load >= threshold && Date.now() < deadline) {
    console.log(`load ${load} ≥ ${threshold}; waiting…`);
    await sleep(20_000);
    load = loadAverage()[0];
  }
  return load;
}

/** Drops a database of the cluster (its connections are closed by then). */
async function dropDatabase(pg: PostgresCluster, url: string): Promise<void> {
  await pg.psql(`drop database ${new URL(url).pathname.slice(1)} with (force)`);
}

/** The commit under test, and files of the relay or SDK changed but not committed. */
async function gitState(): Promise<{ head: string; dirty: string[] }> {
  const run = async (args: string[]) => {
    const out = await new Deno.Command("git", {
      args,
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  };
  const dirty = await run(["status", "--porcelain", "--", "main.ts", "relay", "client"]);
  return {
    head: await run(["rev-parse", "--short", "HEAD"]),
    dirty: dirty ? dirty.split("\n") : [],
  };
}

/** Everything one run measured; written as JSON. */
type Results = {
  date: string;
  git: { head: string; dirty: string[] };
  machine: ReturnType<typeof machineInfo>;
  options: Omit<Options, "out">;
  loadavg_start: [number, number, number];
  postgres?: Awaited<ReturnType<typeof postgresSettings>>;
  ceilings: {
    postgres_insert?: Awaited<ReturnType<typeof postgresCeiling>> & { loadavg_before: number };
    pglite_insert?: Awaited<ReturnType<typeof pgliteCeiling>> & { loadavg_before: number };
    group_commit?: (CommitCeiling & { loadavg_before: number })[];
    ws_echo?: Awaited<ReturnType<typeof echoCeiling>> & { loadavg_before: number };
    ws_broadcast?: (RateResult & { groups: number; group_size: number })[];
    ws_push?: Awaited<ReturnType<typeof pushCeiling>>;
    postgres_read?: Awaited<ReturnType<typeof postgresReadCeiling>>;
    replay_read?: Awaited<ReturnType<typeof replayReadCeiling>>;
    ws_idle?: Awaited<ReturnType<typeof idleCeiling>>;
  };
  fanout?: {
    database: string;
    ack: AckMode;
    groups: number;
    group_size: number;
    body_bytes: number;
    registration_s: number;
    connect_s: number;
    runs: (RateResult & { fsync: string })[];
    relay_log: string[];
    cpu_profile?: unknown;
  };
  pglite?: {
    ack: AckMode;
    registration_s: number;
    connect_s: number;
    runs: RateResult[];
    relay_log: string[];
    cpu_profile?: unknown;
  };
  catchup?: (CatchupResult & { cpu_profile?: unknown })[];
  steps: { name: string; seconds: number }[];
  idle?: IdleResult & { relay_log: string[]; cpu_profile?: unknown };
  abuse?: AbuseResult[];
  /** Sequential HTTP sends, direct and through the delay proxy. */
  far?: FarRun[];
  growth?: GrowthResult;
  /** Twice the sustained rate for 30 s, Postgres fsync on. */
  overload?: OverloadResult & { relay_log: string[]; cpu_profile?: unknown };
  /** Heap held per send waiting in the commit queue (commits held back by a lock). */
  queue?: QueueHeapResult;
  errors: string[];
};

async function main(): Promise<void> {
  const options = parseOptions(Deno.args);
  if (options.waitLoad !== null) await waitForQuiet(options.waitLoad, options.waitMax);
  const has = (s: Scenario) => options.scenarios.includes(s);
  const { out: _out, ...shownOptions } = options;
  const results: Results = {
    date: new Date().toISOString(),
    git: await gitState(),
    machine: machineInfo(),
    options: shownOptions,
    loadavg_start: loadAverage(),
    ceilings: {},
    steps: [],
    errors: [],
  };
  await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  const save = () => Deno.writeTextFile(options.out, JSON.stringify(results, null, 2) + "\n");
  const chars = bodyChars(options.bodyBytes);
  const recipients = options.groupSize;
  const stallS = 10;
  const fanoutRows: FanoutRow[] = [];
  console.log(
    `Sealpost bench on ${results.machine.cpus} × ${results.machine.cpu_model}, ` +
      `load ${results.loadavg_start.join(" ")}; scenarios ${options.scenarios.join(", ")}`,
  );

  const needsPostgres =
    ["raw", "fanout", "catchup", "idle", "far", "overload", "queue"].some((s) =>
      has(s as Scenario)
    ) ||
    (has("growth") && !options.growthUrl);
  let pg: PostgresCluster | null = null;
  const cleanup: (() => Promise<void>)[] = [];
  try {
    if (needsPostgres) {
      pg = await startPostgres();
      const cluster = pg;
      cleanup.push(() => cluster.destroy());
      results.postgres = await postgresSettings(pg);
      console.log(
        `Postgres ${results.postgres.version}: fsync=${results.postgres.fsync}, ` +
          `synchronous_commit=${results.postgres.synchronous_commit}`,
      );
    }
    const pgPid = pg ? postmasterPid(pg) : undefined;

    const step = async (name: string, task: () => Promise<void>) => {
      console.log(`\n== ${name} (load ${loadAverage()[0]})`);
      const t0 = performance.now();
      try {
        await task();
      } catch (error) {
        console.error(`${name} failed:`, error);
        results.errors.push(`${name}: ${(error as Error).stack ?? error}`);
      }
      const seconds = Math.round((performance.now() - t0) / 1000);
      results.steps.push({ name, seconds });
      console.log(`(${seconds} s)`);
      await save();
    };

    if (has("raw")) {
      await step("ceiling: Postgres insert", async () => {
        const loadavg = loadAverage()[0];
        const url = await pg!.createDatabase();
        const r = await postgresCeiling(url, options.quick ? 50_000 : 100_000);
        // Dropped at once, so autovacuum does not work on it during the next steps.
        await dropDatabase(pg!, url);
        results.ceilings.postgres_insert = { ...r, loadavg_before: loadavg };
        console.log(r);
      });
      await step("ceiling: PGlite insert", async () => {
        const loadavg = loadAverage()[0];
        const r = await pgliteCeiling(options.quick ? 20_000 : 50_000);
        results.ceilings.pglite_insert = { ...r, loadavg_before: loadavg };
        console.log(r);
      });
      await step("ceiling: the relay's group commit alone (in this process)", async () => {
        results.ceilings.group_commit = [];
        for (const url of [await pg!.createDatabase(), null]) {
          const loadavg = loadAverage()[0];
          const r = await commitCeiling(url, {
            seconds: options.quick ? 2 : 4,
            quick: options.quick,
            rates: options.quick ? [] : url ? options.rates : options.pgliteRates,
            postgresPid: url ? pgPid : undefined,
          });
          if (url) await dropDatabase(pg!, url);
          results.ceilings.group_commit.push({ ...r, loadavg_before: loadavg });
          console.log(r.database, JSON.stringify(r.batches));
          console.log(JSON.stringify(r.closed_loop));
          console.log(JSON.stringify(r.open_loop));
          console.log(JSON.stringify(r.grown));
        }
      });
    }

    if (has("raw") || has("fanout")) {
      await step("ceiling: bare WebSocket echo and broadcast", async () => {
        const server = await startRawServer();
        try {
          const conns = options.groups * options.groupSize;
          const loadavg = loadAverage()[0];
          const echo = await echoCeiling(server, conns, options.quick ? 2 : 5, 4, chars);
          results.ceilings.ws_echo = { ...echo, loadavg_before: loadavg };
          console.log(`echo at ${conns} connections: ${echo.msg_s} msg/s`);
          const fleet: Fleet = {
            groups: [],
            clients: [],
            sessions: null,
            registration_s: 0,
            connect_s: 0,
            current: null,
            close: () => {},
          };
          const raw = await broadcastClients(
            server,
            options.groups,
            options.groupSize,
            () => fleet.current,
          );
          fleet.clients = raw.clients;
          const rates = [...new Set([...options.rates, ...options.rawExtraRates])];
          results.ceilings.ws_broadcast = [];
          for (const rate of rates) {
            const r = await measureRate(
              fleet,
              { pid: server.pid },
              rate,
              options.durationS,
              recipients,
              chars,
              stallS,
            );
            results.ceilings.ws_broadcast.push({
              ...r,
              groups: options.groups,
              group_size: options.groupSize,
            });
            fanoutRows.push({ target: "bare WS", result: r });
            console.log(fanoutTable(fanoutRows.slice(-1)));
          }
          await closeSockets(raw.sockets);
        } finally {
          await server.stop();
        }
      });
    }

    if (has("fanout")) {
      await step("fan-out on Postgres", async () => {
        const profDir = options.cpuProf
          ? new URL(`./tmp/prof-${Date.now()}`, import.meta.url).pathname
          : undefined;
        if (profDir) await Deno.mkdir(profDir, { recursive: true });
        const databaseUrl = await pg!.createDatabase();
        if (options.planCacheMode) {
          if (!/^[a-z_]+$/.test(options.planCacheMode)) throw new Error("Bad --plan-cache-mode");
          await pg!.psql(
            `alter database ${
              new URL(databaseUrl).pathname.slice(1)
            } set plan_cache_mode = ${options.planCacheMode}`,
          );
        }
        const relay = await startRelay({ databaseUrl, cpuProfDir: profDir });
        let fleet: Fleet | null = null;
        try {
          fleet = await relayFleet(relay, options.groups, options.groupSize, options.ack);
          results.fanout = {
            database: "postgres",
            ack: options.ack,
            groups: options.groups,
            group_size: options.groupSize,
            body_bytes: options.bodyBytes,
            registration_s: fleet.registration_s,
            connect_s: fleet.connect_s,
            runs: [],
            relay_log: [],
          };
          console.log(
            `registered ${options.groups * options.groupSize} devices in ` +
              `${fleet.registration_s} s, connected in ${fleet.connect_s} s`,
          );
          const target = { pid: relay.pid, relay, postgresPid: pgPid };
          for (const rate of options.rates) {
            const r = await measureRate(
              fleet,
              target,
              rate,
              options.durationS,
              recipients,
              chars,
              stallS,
            );
            results.fanout.runs.push({ ...r, fsync: "off" });
            fanoutRows.push({ target: "relay pg", result: r });
            console.log(fanoutTable(fanoutRows.slice(-1)));
            await save();
          }
          if (options.fsyncRates.length > 0) {
            await setFsync(pg!, true);
            try {
              for (const rate of options.fsyncRates) {
                const r = await measureRate(
                  fleet,
                  target,
                  rate,
                  options.durationS,
                  recipients,
                  chars,
                  stallS,
                );
                results.fanout.runs.push({ ...r, fsync: "on" });
                fanoutRows.push({ target: "relay pg fsync", result: r });
                console.log(fanoutTable(fanoutRows.slice(-1)));
                await save();
              }
            } finally {
              await setFsync(pg!, false);
            }
          }
        } finally {
          fleet?.close();
          await sleep(500);
          await relay.stop();
          if (results.fanout) results.fanout.relay_log = relay.log();
        }
        if (profDir && results.fanout) {
          results.fanout.cpu_profile = await summarizeProfileDir(profDir);
        }
      });
    }

    if (has("pglite")) {
      await step("fan-out on embedded PGlite", async () => {
        const profDir = options.cpuProf
          ? new URL(`./tmp/prof-pglite-${Date.now()}`, import.meta.url).pathname
          : undefined;
        if (profDir) await Deno.mkdir(profDir, { recursive: true });
        const relay = await startRelay({ cpuProfDir: profDir });
        let fleet: Fleet | null = null;
        try {
          fleet = await relayFleet(relay, options.groups, options.groupSize, options.ack);
          results.pglite = {
            ack: options.ack,
            registration_s: fleet.registration_s,
            connect_s: fleet.connect_s,
            runs: [],
            relay_log: [],
          };
          for (const rate of options.pgliteRates) {
            const r = await measureRate(
              fleet,
              { pid: relay.pid, relay },
              rate,
              options.durationS,
              recipients,
              chars,
              stallS,
            );
            results.pglite.runs.push(r);
            fanoutRows.push({ target: "relay pglite", result: r });
            console.log(fanoutTable(fanoutRows.slice(-1)));
            await save();
          }
        } finally {
          fleet?.close();
          await sleep(500);
          await relay.stop();
          if (results.pglite) results.pglite.relay_log = relay.log();
          await Deno.remove(relay.dataDir, { recursive: true }).catch(() => {});
        }
        if (profDir && results.pglite) {
          results.pglite.cpu_profile = await summarizeProfileDir(profDir);
        }
      });
    }

    if (has("catchup")) {
      results.catchup = [];
      const runs = options.catchupClients.flatMap((client): CatchupSpec[] =>
        client === "sdk" && !options.quick
          ? [{ client, ack: "sdk" as const }, { client, ack: "every" as const }]
          : [{ client, ack: "sdk" as const }]
      );
      await step("catch-up on Postgres", async () => {
        const databaseUrl = await pg!.createDatabase();
        const profDir = options.cpuProf
          ? `${new URL(".", import.meta.url).pathname}tmp/prof-catchup-${Date.now()}`
          : undefined;
        if (profDir) await Deno.mkdir(profDir, { recursive: true });
        let relay: RelayProcess = await startRelay({ databaseUrl, cpuProfDir: profDir });
        try {
          const out = await catchupScenario(relay, {
            count: options.catchup,
            runs,
            bodyBytes: options.bodyBytes,
            databaseUrl,
            postgresPid: pgPid,
          });
          relay = out.relay;
          results.catchup!.push(out.result);
          console.log(catchupTable([out.result]));
          const group = (await pg!.psql(
            "select id from groups order by last_seq desc limit 1",
            new URL(databaseUrl).pathname.slice(1),
          )).trim();
          results.ceilings.postgres_read = await postgresReadCeiling(
            databaseUrl,
            group,
            options.catchup,
          );
          console.log("raw Postgres read:", results.ceilings.postgres_read);
          results.ceilings.replay_read = await replayReadCeiling(
            databaseUrl,
            group,
            options.catchup,
          );
          console.log("replay pages read:", results.ceilings.replay_read);
        } finally {
          await relay.stop();
        }
        if (profDir && results.catchup?.length) {
          results.catchup[0]!.cpu_profile = await summarizeProfileDir(profDir);
        }
        const server = await startRawServer();
        try {
          results.ceilings.ws_push = await pushCeiling(server, options.catchup, chars);
          console.log("bare WS push:", results.ceilings.ws_push);
        } finally {
          await server.stop();
        }
      });
      if (!options.quick) {
        await step("catch-up on PGlite", async () => {
          let relay: RelayProcess = await startRelay({});
          try {
            const out = await catchupScenario(relay, {
              count: options.catchup,
              runs: [{ client: "sdk", ack: "sdk" }],
              bodyBytes: options.bodyBytes,
            });
            relay = out.relay;
            results.catchup!.push(out.result);
            console.log(catchupTable([out.result]));
          } finally {
            await relay.stop();
            await Deno.remove(relay.dataDir, { recursive: true }).catch(() => {});
          }
        });
      }
    }

    if (has("idle")) {
      await step(`${options.connections} idle connections`, async () => {
        const databaseUrl = await pg!.createDatabase();
        const first = await startRelay({ databaseUrl });
        const profDir = options.cpuProf
          ? new URL(`./tmp/prof-idle-${Date.now()}`, import.meta.url).pathname
          : undefined;
        if (profDir) await Deno.mkdir(profDir, { recursive: true });
        const out = await idleScenario(first, options.connections, databaseUrl, {
          idleSeconds: options.idleSeconds,
          cpuProfDir: profDir,
        }).catch(
          async (error) => {
            await first.stop();
            throw error;
          },
        );
        await out.relay.stop();
        results.idle = {
          ...out.result,
          relay_log: out.relay.log(),
          ...(profDir ? { cpu_profile: await summarizeProfileDir(profDir) } : {}),
        };
        const server = await startRawServer();
        try {
          await sleep(1000);
          results.ceilings.ws_idle = await idleCeiling(server, options.connections);
        } finally {
          await server.stop();
        }
        console.log(idleTable(results.idle, results.ceilings.ws_idle));
      });
    }
    if (has("abuse")) {
      await step("abuse: big bodies and unauthenticated sockets", async () => {
        results.abuse = [];
        for (const spread of [false, true]) {
          const r = await abuseScenario({
            clients: options.abuseClients,
            bodyMiB: options.abuseBodyMiB,
            sockets: options.abuseSockets,
            spread,
            frameKiB: options.abuseFrameKiB,
          });
          results.abuse.push(r);
          console.log(abuseTable(r));
          await save();
        }
      });
    }
    if (has("far")) {
      await step(`far from the primary (${options.farDelayMs} ms each way)`, async () => {
        results.far = [];
        for (const delay of [0, options.farDelayMs]) {
          const databaseUrl = await pg!.createDatabase();
          const run = await farRun(databaseUrl, delay, options.farSends);
          await dropDatabase(pg!, databaseUrl);
          results.far.push(run);
          console.log(farLine(run));
        }
      });
    }
    if (has("growth")) {
      await step(`growth: ${options.messages} stored messages`, async () => {
        const url = options.growthUrl ?? await pg!.createDatabase();
        if (!options.growthUrl) await setFsync(pg!, true);
        try {
          results.growth = await growthScenario(url, {
            messages: options.messages,
            groups: options.growthGroups,
            catchup: options.catchup,
            rate: options.growthRate,
            durationS: options.durationS,
            singleSends: 100,
            postgresPid: options.growthUrl ? undefined : pgPid,
          });
        } finally {
          if (!options.growthUrl) {
            await setFsync(pg!, false);
            await dropDatabase(pg!, url);
          }
        }
      });
    }
    if (has("overload")) {
      await step(`overload: ${options.overloadFactor}× the sustained rate, fsync on`, async () => {
        const databaseUrl = await pg!.createDatabase();
        await setFsync(pg!, true);
        const profDir = options.cpuProf
          ? new URL(`./tmp/prof-overload-${Date.now()}`, import.meta.url).pathname
          : undefined;
        if (profDir) await Deno.mkdir(profDir, { recursive: true });
        const relay = await startRelay({ databaseUrl, cpuProfDir: profDir });
        try {
          const out = await overloadScenario(relay, databaseUrl, {
            groups: options.overloadGroups,
            size: options.groupSize,
            probeWindow: options.overloadWindow,
            ...(options.overloadRate !== null ? { rate: options.overloadRate } : {}),
            probeS: 10,
            factor: options.overloadFactor,
            durationS: options.overloadSeconds,
            bodyChars: chars,
          });
          results.overload = { ...out, relay_log: relay.log() };
          console.log(overloadLine(out));
        } finally {
          await relay.stop();
          if (profDir && results.overload) {
            results.overload.cpu_profile = await summarizeProfileDir(profDir);
          }
          await setFsync(pg!, false);
          await dropDatabase(pg!, databaseUrl);
        }
      });
    }
    if (has("queue")) {
      await step("queue: heap held per queued send", async () => {
        const databaseUrl = await pg!.createDatabase();
        try {
          results.queue = await queueHeapScenario(databaseUrl, {
            sends: options.quick ? 2_000 : 10_000,
            bodyChars: chars,
          });
          console.log(queueHeapLine(results.queue));
        } finally {
          await dropDatabase(pg!, databaseUrl);
        }
      });
    }
  } finally {
    for (const task of cleanup.reverse()) await task().catch(() => {});
    await save();
  }

  console.log(`\n==== Summary (${results.date}, results in ${options.out})`);
  if (fanoutRows.length) {
    console.log(
      "\nFan-out (latency ms, send→receive over all recipients)\n" +
        fanoutTable(fanoutRows),
    );
  }
  if (results.catchup?.length) console.log("\nCatch-up\n" + catchupTable(results.catchup));
  if (results.idle) {
    console.log("\nIdle connections\n" + idleTable(results.idle, results.ceilings.ws_idle ?? null));
  }
  if (results.abuse?.length) {
    console.log("\nAbuse\n" + results.abuse.map(abuseTable).join("\n"));
  }
  if (results.far?.length) {
    console.log("\nFar from the primary (sequential HTTP sends, time to 201)");
    for (const run of results.far) console.log(farLine(run));
  }
  if (results.overload) {
    console.log("\nOverload\n  " + overloadLine(results.overload));
  }
  if (results.queue) console.log("\nCommit queue\n  " + queueHeapLine(results.queue));
  const c = results.ceilings;
  if (c.postgres_insert || c.pglite_insert || c.ws_echo) {
    console.log("\nCeilings");
    if (c.postgres_insert) {
      console.log("  Postgres insert rows/s:", JSON.stringify(c.postgres_insert));
    }
    if (c.pglite_insert) console.log("  PGlite insert rows/s:", JSON.stringify(c.pglite_insert));
    if (c.ws_echo) {
      console.log(
        `  bare WS echo: ${c.ws_echo.msg_s} msg/s at ${c.ws_echo.connections} connections`,
      );
    }
    if (c.ws_push) console.log(`  bare WS push: ${c.ws_push.msg_s} msg/s`);
    if (c.postgres_read) console.log(`  Postgres paged read: ${c.postgres_read.rows_s} rows/s`);
    if (c.replay_read) console.log(`  replay pages read: ${c.replay_read.rows_s} rows/s`);
  }
  if (results.errors.length) {
    console.log(`\n${results.errors.length} step(s) failed:\n${results.errors.join("\n")}`);
    Deno.exitCode = 1;
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(`bench: ${(error as Error).message}`);
    Deno.exit(2);
  }
}

/**
 * @module
 * Growth (issue 14, item 7): how the relay behaves with a big `messages` table. The table is filled
 * by SQL (`growth_fill.ts`; reused when the database already holds a fill, so a 10-million-row
 * fill is paid once), then, against one relay process (its sweeper parked, so only this scenario
 * expires): the table and index sizes; acknowledged WebSocket sends one after another and at a
 * modest open-loop rate (time from `send` to the `sent` reply: the commit under the group lock,
 * the index probes of the idempotency check, the inserts into every index); the catch-up of the
 * catch-up group's backlog by a new member device; and the expiry job of `relay/jobs/expire.ts`
 * removing the oldest day's rows, once alone and once under the same send load (its time, its
 * batches, its WAL, the dead rows it leaves, and the sends' latency while it runs), then the
 * `VACUUM` that autovacuum would eventually do. Expiry runs in this process at a "now" one day
 * past the oldest `expires_at`, whatever the wall clock says, so reruns work on the same cluster.
 */

import postgres from "postgres";
import { Session } from "../client/mod.ts";
import { silentLogger } from "../relay/base/log.ts";
import { loadConfig } from "../relay/config/config.ts";
import { expireMessages } from "../relay/jobs/expire.ts";
import { withDeps } from "../commands/open.ts";
import { type BenchDevice, registerDevices } from "./fleet.ts";
import { CATCHUP_GROUP, existingFill, fill } from "./growth_fill.ts";
import { sdkReplay } from "./catchup.ts";
import { bodyChars } from "./load.ts";
import { startRelay } from "./relay_process.ts";
import { Latencies, type LatencySummary, pool, round, sleep } from "./stats.ts";
import { loadAverage, type Usage, UsageMeter } from "./system.ts";

/** What to measure. */
export type GrowthOptions = {
  /** Filler messages (the catch-up group's come on top). */
  messages: number;
  /** Filler groups. */
  groups: number;
  /** The catch-up group's messages. */
  catchup: number;
  /** Open-loop send rate, msg/s. */
  rate: number;
  /** Seconds of the rate run. */
  durationS: number;
  /** Sequential sends timed one by one. */
  singleSends: number;
  /** The postmaster's pid, for Postgres's CPU (optional). */
  postgresPid?: number;
};

/** Bytes of `messages`, its TOAST table and each index. */
export type Sizes = { table: number; toast: number; indexes: Record<string, number> };

/** A send load's result. */
export type LoadRun = {
  offered_rate: number;
  seconds: number;
  acked: number;
  errors: number;
  latency: LatencySummary;
  usage: Usage;
  loadavg_before: number;
};

/** One expiry pass. */
export type ExpiryRun = {
  under_load: boolean;
  deleted: number;
  seconds: number;
  rows_s: number;
  batches: number;
  /** Milliseconds per batch (statement): first, median, last, slowest. */
  batch_ms: { first: number; p50: number; last: number; max: number };
  wal_bytes: number;
  dead_rows_after: number;
  /** Sends whose `send` started while expiry ran (under load only). */
  sends_during?: LoadRun;
};

/** The scenario's result. */
export type GrowthResult = {
  rows: number;
  filler_groups: number;
  fill: { reused: boolean; seconds: number | null; wal_bytes: number | null };
  vacuum_after_fill_s: number | null;
  sizes: Sizes;
  single_sends: LatencySummary;
  load: LoadRun;
  catchup: { messages: number; seconds: number; msg_s: number; first_message_s: number };
  expiry: ExpiryRun[];
  vacuum: { seconds: number; wal_bytes: number; sizes_after: Sizes };
  table_stats: Record<string, unknown>;
  autovacuum_settings: Record<string, string>;
};

const DAY_MS = 86_400_000;

/**
 * Runs the scenario against the database at `databaseUrl` (Postgres; fsync as the cluster has it).
 *
 * @example
 * ```ts
 * const result = await growthScenario(url, { messages: 100_000, groups: 10_000, catchup: 100_000,
 *   rate: 500, durationS: 15, singleSends: 100 });
 * ```
 */
export async function growthScenario(
  databaseUrl: string,
  options: GrowthOptions,
  log: (line: string) => void = console.log,
): Promise<GrowthResult> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  options = { ...options, postgresPid: options.postgresPid ?? await postmaster(sql) };
  // The relay migrates the database; its sweeper is parked (this scenario expires by itself).
  const relay = await startRelay({ databaseUrl, env: { SEALPOST_SWEEP_INTERVAL: "24h" } });
  try {
    let reused = await existingFill(sql);
    let fillS: number | null = null;
    let fillWal: number | null = null;
    let vacuumS: number | null = null;
    if (!reused) {
      const wal0 = await walLsn(sql);
      const plan = { ...options, now: Date.now() };
      log(`filling ${options.messages} + ${options.catchup} messages…`);
      fillS = round(await fill(sql, plan, (n) => log(`  ${n} rows`)));
      fillWal = await walSince(sql, wal0);
      // A steady table has been vacuumed and analyzed (autovacuum would, after such an insert).
      const t0 = performance.now();
      await sql.unsafe("vacuum (analyze) messages");
      vacuumS = round((performance.now() - t0) / 1000);
      log(`filled in ${fillS} s (${mb(fillWal)} MB of WAL), vacuum analyze ${vacuumS} s`);
    } else {
      log(`reusing the fill: ${reused.messages} messages in ${reused.groups} groups`);
    }
    reused ??= await existingFill(sql);
    const [{ rows }] = await sql.unsafe("select count(*)::bigint as rows from messages");
    const sizes = await tableSizes(sql);
    log(`${rows} rows; ${JSON.stringify(sizes)}`);

    const body = "A".repeat(bodyChars(342));
    const { devices } = await registerDevices(relay.url, 21, 8);
    const reader = devices[0];
    const senders = await pool(devices.slice(1), 8, async (device) => {
      const group = await device.api.createGroup();
      const session = new Session(device.api, { groups: [group.id], pingIntervalMs: 0 });
      await session.ready();
      return { session, group: group.id };
    });
    await sql.unsafe(
      `insert into group_members (group_id, account_id, role, added_at)
       values ($1, $2, 'member', $3)`,
      [CATCHUP_GROUP, reader.account, Date.now()],
    );
    try {
      const single = await singleSends(senders[0], body, options.singleSends);
      log(`single sends: ${JSON.stringify(single)}`);
      const load = await sendLoad(
        senders,
        body,
        options.rate,
        () => sleep(options.durationS * 1000),
        {
          relayPid: relay.pid,
          postgresPid: options.postgresPid,
        },
      );
      log(`${options.rate} msg/s: ${JSON.stringify(load)}`);
      const catchup = await catchUp(sql, reader);
      log(`catch-up: ${JSON.stringify(catchup)}`);

      const expiry: ExpiryRun[] = [];
      for (const underLoad of [false, true]) {
        const run = await expireOldestDay(sql, databaseUrl, underLoad ? senders : null, body, {
          ...options,
          relayPid: relay.pid,
        });
        log(`expiry${underLoad ? " under load" : ""}: ${JSON.stringify(run)}`);
        expiry.push(run);
      }
      const wal0 = await walLsn(sql);
      const t0 = performance.now();
      await sql.unsafe("vacuum messages");
      const vacuum = {
        seconds: round((performance.now() - t0) / 1000),
        wal_bytes: await walSince(sql, wal0),
        sizes_after: await tableSizes(sql),
      };
      log(`vacuum: ${JSON.stringify(vacuum)}`);
      return {
        rows: Number(rows),
        filler_groups: reused?.groups ?? options.groups,
        fill: { reused: fillS === null, seconds: fillS, wal_bytes: fillWal },
        vacuum_after_fill_s: vacuumS,
        sizes,
        single_sends: single,
        load,
        catchup,
        expiry,
        vacuum,
        table_stats: await tableStats(sql),
        autovacuum_settings: await autovacuumSettings(sql),
      };
    } finally {
      for (const { session } of senders) session.close();
    }
  } finally {
    await relay.stop();
    await sql.end({ timeout: 5 });
  }
}

/** The postmaster's pid when its data directory is readable here (a local cluster), else none. */
async function postmaster(sql: postgres.Sql): Promise<number | undefined> {
  try {
    const [{ dir }] = await sql.unsafe("select current_setting('data_directory') as dir");
    return Number((await Deno.readTextFile(`${dir}/postmaster.pid`)).split("\n")[0]) || undefined;
  } catch {
    return undefined;
  }
}

async function walLsn(sql: postgres.Sql): Promise<string> {
  const [row] = await sql.unsafe("select pg_current_wal_insert_lsn()::text as lsn");
  return row.lsn;
}

async function walSince(sql: postgres.Sql, lsn: string): Promise<number> {
  const [row] = await sql.unsafe(
    "select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1)::bigint as n",
    [lsn],
  );
  return Number(row.n);
}

function mb(bytes: number): number {
  return Math.round(bytes / 1e6);
}

/** Sizes of `messages`, its TOAST table and its indexes, in bytes. */
export async function tableSizes(sql: postgres.Sql): Promise<Sizes> {
  const [t] = await sql.unsafe(
    `select pg_relation_size('messages')::bigint as table,
       coalesce(pg_total_relation_size(nullif(reltoastrelid, 0)), 0)::bigint as toast
     from pg_class where oid = 'messages'::regclass`,
  );
  const indexes = await sql.unsafe(
    `select c.relname as name, pg_relation_size(c.oid)::bigint as bytes
     from pg_index i join pg_class c on c.oid = i.indexrelid
     where i.indrelid = 'messages'::regclass order by c.relname`,
  );
  return {
    table: Number(t.table),
    toast: Number(t.toast),
    indexes: Object.fromEntries(indexes.map((r) => [r.name, Number(r.bytes)])),
  };
}

async function tableStats(sql: postgres.Sql): Promise<Record<string, unknown>> {
  const [row] = await sql.unsafe(
    `select n_live_tup, n_dead_tup, n_mod_since_analyze, n_ins_since_vacuum, vacuum_count,
       autovacuum_count, analyze_count, autoanalyze_count, last_autovacuum::text,
       last_autoanalyze::text
     from pg_stat_user_tables where relname = 'messages'`,
  );
  return Object.fromEntries(
    Object.entries(row).map(([k, v]) => [k, typeof v === "string" && /^\d+$/.test(v) ? +v : v]),
  );
}

async function autovacuumSettings(sql: postgres.Sql): Promise<Record<string, string>> {
  const rows = await sql.unsafe(
    `select name, setting from pg_settings
     where name in ('autovacuum_vacuum_scale_factor', 'autovacuum_vacuum_threshold',
       'autovacuum_vacuum_insert_scale_factor', 'autovacuum_naptime', 'shared_buffers',
       'fsync', 'full_page_writes', 'synchronous_commit', 'max_wal_size')`,
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
}

type Sender = { session: Session; group: string };

/** `n` acknowledged sends one after another from one session (after five to warm up). */
async function singleSends(sender: Sender, body: string, n: number): Promise<LatencySummary> {
  for (let i = 0; i < 5; i++) await sender.session.send(sender.group, { body });
  const latencies = new Latencies();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await sender.session.send(sender.group, { body });
    latencies.add(performance.now() - t0);
  }
  return latencies.summary();
}

/** Most sends the load keeps unanswered before it stops offering more (a bound, not a target). */
const MAX_IN_FLIGHT = 5000;

/**
 * Offers `rate` sends per second, round-robin over the senders, until `until` resolves (at most
 * 600 s); times each from `send` to its `sent`. `window` keeps only sends started inside it.
 */
async function sendLoad(
  senders: Sender[],
  body: string,
  rate: number,
  until: () => Promise<unknown>,
  meter: { relayPid: number; postgresPid?: number },
  window?: { start: () => number; end: () => number },
): Promise<LoadRun> {
  const loadavg = loadAverage()[0];
  const usage = new UsageMeter(meter.relayPid, meter.postgresPid);
  const latencies = new Latencies();
  const pending = new Set<Promise<void>>();
  let offered = 0;
  let errors = 0;
  let done = false;
  const t0 = performance.now();
  const stop = until().then(() => done = true);
  const cap = setTimeout(() => done = true, 600_000);
  while (!done) {
    const due = Math.floor((performance.now() - t0) / 1000 * rate);
    while (offered < due && pending.size < MAX_IN_FLIGHT) {
      const sender = senders[offered++ % senders.length];
      const started = performance.now();
      const p = sender.session.send(sender.group, { body }).then(
        () => {
          const inWindow = !window || (started >= window.start() && started <= window.end());
          if (inWindow) latencies.add(performance.now() - started);
        },
        () => void errors++,
      ).finally(() => pending.delete(p));
      pending.add(p);
    }
    await sleep(5);
  }
  clearTimeout(cap);
  await stop;
  const seconds = (performance.now() - t0) / 1000;
  await Promise.all(pending);
  const latency = latencies.summary();
  return {
    offered_rate: rate,
    seconds: round(seconds),
    acked: latency.count,
    errors,
    latency,
    usage: usage.stop(),
    loadavg_before: loadavg,
  };
}

/** A new member device replays the catch-up group's stored messages. */
async function catchUp(sql: postgres.Sql, reader: BenchDevice) {
  const [{ n }] = await sql.unsafe(
    `select count(*)::bigint as n from messages where group_id = $1 and expires_at > $2`,
    [CATCHUP_GROUP, Date.now()],
  );
  const count = Number(n);
  const t0 = performance.now();
  const { first, received } = await sdkReplay(reader, CATCHUP_GROUP, count, "sdk", {
    timeoutMs: 300_000,
    pingIntervalMs: 0,
  });
  const seconds = (performance.now() - t0) / 1000;
  return {
    messages: received,
    seconds: round(seconds),
    msg_s: Math.round(count / seconds),
    first_message_s: round((first - t0) / 1000),
  };
}

/**
 * Runs the relay's expiry (`expireMessages`, in this process, over the same database) at a "now"
 * one day past the oldest stored `expires_at`; with `senders`, under the send load, which starts
 * two seconds before and ends two seconds after.
 */
async function expireOldestDay(
  sql: postgres.Sql,
  databaseUrl: string,
  senders: Sender[] | null,
  body: string,
  options: GrowthOptions & { relayPid: number },
): Promise<ExpiryRun> {
  const [{ oldest }] = await sql.unsafe(
    "select min(expires_at)::bigint as oldest from messages where expires_at is not null",
  );
  const now = Number(oldest) + DAY_MS;
  const dataDir = await Deno.makeTempDir({ prefix: "sealpost-growth-" });
  const config = loadConfig({ DATABASE_URL: databaseUrl, SEALPOST_DATA_DIR: dataDir });
  const wal0 = await walLsn(sql);
  let started = Infinity;
  let ended = Infinity;
  const batches: number[] = [];
  let deleted = 0;
  const expire = () =>
    withDeps(config, "bench-growth", silentLogger, async (deps) => {
      started = performance.now();
      let last = started;
      deleted = await expireMessages(deps, now, {
        onBatch: () => {
          const t = performance.now();
          batches.push(t - last);
          last = t;
        },
      });
      ended = performance.now();
    });
  let during: LoadRun | undefined;
  if (senders) {
    const window = { start: () => started, end: () => ended };
    during = await sendLoad(
      senders,
      body,
      options.rate,
      async () => {
        await sleep(2000);
        await expire();
        await sleep(2000);
      },
      { relayPid: options.relayPid, postgresPid: options.postgresPid },
      window,
    );
  } else {
    await expire();
  }
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  const wal = await walSince(sql, wal0);
  const seconds = (ended - started) / 1000;
  const sorted = [...batches].sort((a, b) => a - b);
  const [stats] = await sql.unsafe(
    "select n_dead_tup::bigint as dead from pg_stat_user_tables where relname = 'messages'",
  );
  return {
    under_load: senders !== null,
    deleted,
    seconds: round(seconds),
    rows_s: Math.round(deleted / seconds),
    batches: batches.length,
    batch_ms: {
      first: round(batches[0] ?? 0),
      p50: round(sorted[Math.floor(sorted.length / 2)] ?? 0),
      last: round(batches.at(-1) ?? 0),
      max: round(sorted.at(-1) ?? 0),
    },
    wal_bytes: wal,
    dead_rows_after: Number(stats.dead),
    ...(during ? { sends_during: during } : {}),
  };
}

/**
 * @module
 * The relay's group commit alone: `relay/persist.ts` driven in this process against the same
 * database, with no WebSocket, no JSON and no fan-out. It shows what the persist stage can do
 * and where a transaction's time goes (each statement timed through Kysely's query log), so a
 * gap between this and the end-to-end numbers points at the rest of the relay, and a gap
 * between this and the raw insert ceiling points at the commit's SQL.
 */

import { PGlite } from "@electric-sql/pglite";
import { Kysely, type LogEvent, PGliteDialect, sql } from "kysely";
import { PostgresJSDialect } from "kysely-postgres-js";
import postgres from "postgres";
import type { Bus } from "../relay/bus/bus.ts";
import { LocalBus } from "../relay/bus/bus_local.ts";
import { PostgresBus, SOLO_CHECK_MS } from "../relay/bus/bus_postgres.ts";
import { systemClock } from "../relay/base/clock.ts";
import type { Db } from "../relay/store/database.ts";
import { silentLogger } from "../relay/base/log.ts";
import { migrate } from "../relay/store/migrate.ts";
import { GroupCommit } from "../relay/persist.ts";
import type { Database } from "../relay/store/schema.ts";
import { Latencies, type LatencySummary, round } from "./stats.ts";
import { cpuSeconds, treeCpuSeconds } from "./system.ts";

const STATEMENTS: [string, RegExp][] = [
  ["begin", /^\s*begin/i],
  ["lock_groups", /select id, last_seq/],
  ["members", /select group_id, account_id/],
  ["dedupe", /select m\.group_id/],
  ["insert", /insert into "?messages"?/],
  ["update_groups", /update groups g set last_seq/],
  ["notify", /pg_notify/],
  ["commit", /^\s*commit/i],
  // since migration 0007 the whole batch is this one statement
  ["sealpost_commit", /sealpost_commit\(/],
];

/** One forced batch size: its wall time and the mean time of each statement. */
export type BatchTiming = { size: number; ms: number; statements_ms: Record<string, number> };

/** What the group commit alone achieved. */
export type CommitCeiling = {
  database: "postgres" | "pglite";
  batches: BatchTiming[];
  /**
   * `groups` 1: every send into one group (one lane, one commit at a time). `announced`: a
   * second bus listened, so every commit carried its NOTIFY (Postgres; otherwise the bus was
   * alone and committed without).
   */
  closed_loop: {
    in_flight: number;
    groups: number;
    announced: boolean;
    msg_s: number;
    mean_batch: number;
  }[];
  /**
   * Sends at a fixed rate (like the fan-out) for a few seconds: what the commit path alone
   * costs in CPU here (this process: Kysely, postgres.js or PGlite) and in Postgres.
   */
  open_loop: {
    rate: number;
    achieved: number;
    mean_batch: number;
    commit: LatencySummary;
    cpu_pct: number;
    postgres_cpu_pct: number | null;
  }[];
  /** Batches of 10 after the closed loops filled `messages`, before and after ANALYZE. */
  grown: (BatchTiming & { rows: number; analyzed: boolean })[];
};

/** Measures the group commit on a fresh Postgres database (`url`) or a fresh PGlite. */
export async function commitCeiling(
  url: string | null,
  options: {
    seconds: number;
    /** Only the forced batches (no closed loop). */
    quick?: boolean;
    groups?: number;
    size?: number;
    rates?: number[];
    postgresPid?: number;
  } = { seconds: 3 },
): Promise<CommitCeiling> {
  const timings = new Map<string, number[]>();
  const log = (event: LogEvent) => {
    const text = event.query.sql;
    const name = STATEMENTS.find(([, re]) => re.test(text))?.[0];
    if (!name) return;
    const list = timings.get(name) ?? [];
    list.push(event.queryDurationMillis);
    timings.set(name, list);
  };
  let close: () => Promise<void>;
  let db: Db;
  // As in the relay: on Postgres the LISTEN/NOTIFY bus (a pg_notify inside every commit).
  let bus: Bus = new LocalBus();
  let postgresBus: PostgresBus | null = null;
  let peerBus: PostgresBus | null = null;
  if (url) {
    const client = postgres(url, {
      max: 10,
      // As the relay's connections (relay/store/database.ts): every statement planned for its
      // own parameters.
      connection: { plan_cache_mode: "force_custom_plan" },
      onnotice: () => {},
      types: {
        bigint: {
          to: 20,
          from: [20],
          serialize: (value: number) => String(value),
          parse: (value: string) => Number(value),
        },
      },
    });
    db = new Kysely<Database>({ dialect: new PostgresJSDialect({ postgres: client }), log });
    close = async () => {
      await peerBus?.close();
      await bus.close();
      await db.destroy();
    };
  } else {
    const dir = await Deno.makeTempDir({ prefix: "sealpost-bench-commit-" });
    const pglite = await PGlite.create({
      dataDir: dir,
      parsers: { 20: (value: string) => Number(value) },
    });
    db = new Kysely<Database>({ dialect: new PGliteDialect({ pglite }), log });
    close = async () => {
      await db.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    };
  }
  try {
    await migrate(db);
    if (url) {
      bus = postgresBus = await PostgresBus.start({
        url,
        db,
        instanceId: "bench",
        log: silentLogger,
      });
    }
    const groupCount = options.groups ?? 100;
    const size = options.size ?? 6;
    const now = Date.now();
    const accounts = Array.from({ length: groupCount * size }, (_, i) => `a${i}`.padEnd(43, "x"));
    const groups = Array.from({ length: groupCount }, (_, i) => `g${i}`.padEnd(22, "x"));
    await db.insertInto("accounts").values(accounts.map((id) => ({ id, created_at: now })))
      .execute();
    await db.insertInto("groups").values(
      groups.map((id) => ({ id, last_seq: 0, retention_s: 86_400, created_at: now })),
    ).execute();
    await db.insertInto("group_members").values(accounts.map((account_id, i) => ({
      group_id: groups[Math.floor(i / size)],
      account_id,
      role: "member" as const,
      added_at: now,
    }))).execute();

    let batchSizes: number[] = [];
    const commit = new GroupCommit({
      db,
      bus,
      clock: systemClock,
      log: silentLogger,
      maxTtlMs: null,
      windowMs: 1,
      // as in the relay: half the pool's connections commit at once on Postgres
      lanes: url ? 5 : 1,
      onBatch: (n) => batchSizes.push(n),
    });
    const bodyText = "A".repeat(88);
    let counter = 0;
    /** The next send: round-robin over every member, or over group 0's (`oneGroup`). */
    const submit = (oneGroup = false) => {
      const i = counter++ % (oneGroup ? size : accounts.length);
      return commit.submit({
        group: groups[Math.floor(i / size)],
        account: accounts[i],
        device: accounts[i],
        clientId: `c${counter}`,
        bodyText,
      });
    };

    const means = () => {
      const out: Record<string, number> = {};
      for (const [name, list] of timings) {
        out[name] = round(list.reduce((a, b) => a + b, 0) / list.length);
      }
      return out;
    };
    const batches: BatchTiming[] = [];
    for (const n of [1, 10, 100, 500, 1000]) {
      const walls: number[] = [];
      timings.clear();
      for (let rep = 0; rep < (options.quick ? 3 : 5); rep++) {
        const t0 = performance.now();
        await Promise.all(Array.from({ length: n }, submit));
        walls.push(performance.now() - t0);
      }
      const statements = means();
      walls.sort((a, b) => a - b);
      batches.push({
        size: n,
        ms: round(walls[Math.floor(walls.length / 2)]),
        statements_ms: statements,
      });
    }

    const openLoop: CommitCeiling["open_loop"] = [];
    for (const rate of options.rates ?? []) {
      batchSizes = [];
      const latencies = new Latencies();
      const total = Math.round(rate * options.seconds);
      const pg0 = options.postgresPid ? treeCpuSeconds(options.postgresPid) : null;
      const self0 = cpuSeconds(Deno.pid);
      const t0 = performance.now();
      let sent = 0;
      const pending: Promise<unknown>[] = [];
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          const due = Math.min(total, Math.floor((performance.now() - t0) * rate / 1000) + 1);
          for (; sent < due; sent++) {
            const t = performance.now();
            pending.push(submit().then(() => latencies.add(performance.now() - t)));
          }
          if (sent >= total) {
            clearInterval(timer);
            resolve();
          }
        }, 1);
      });
      await Promise.all(pending);
      const elapsed = (performance.now() - t0) / 1000;
      const pg = pg0 === null ? null : treeCpuSeconds(options.postgresPid!) - pg0;
      openLoop.push({
        rate,
        achieved: Math.round(total / elapsed),
        mean_batch: round(batchSizes.reduce((a, b) => a + b, 0) / batchSizes.length),
        commit: latencies.summary(),
        cpu_pct: round((cpuSeconds(Deno.pid) - self0) / elapsed * 100),
        postgres_cpu_pct: pg === null ? null : round(pg / elapsed * 100),
      });
    }
    const closedLoop: CommitCeiling["closed_loop"] = [];
    const loops = options.quick ? [] : [
      { inFlight: 100, oneGroup: false, announced: false },
      { inFlight: 1000, oneGroup: false, announced: false },
      { inFlight: 3000, oneGroup: false, announced: false },
      { inFlight: 1000, oneGroup: true, announced: false },
      // The same with another instance listening: every commit carries its NOTIFY, which
      // Postgres serializes with every other notifying commit, fsync included.
      ...(url
        ? [
          { inFlight: 100, oneGroup: false, announced: true },
          { inFlight: 1000, oneGroup: false, announced: true },
        ]
        : []),
    ];
    for (const { inFlight, oneGroup, announced } of loops) {
      if (postgresBus) {
        await busMode(postgresBus, announced, url!, db, () => peerBus, (b) => peerBus = b);
      }
      batchSizes = [];
      let done = 0;
      const t0 = performance.now();
      const end = t0 + options.seconds * 1000;
      let stoppedAt = 0;
      // The deadline is checked in the loop, not by a timer: with PGlite every query resolves
      // as a microtask, so a timer would never get its turn while the workers keep submitting.
      const worker = async () => {
        while (performance.now() < end) {
          await submit(oneGroup);
          done++;
        }
        stoppedAt ||= performance.now();
      };
      const workers = Array.from({ length: inFlight }, worker);
      await Promise.all(workers);
      const elapsed = (stoppedAt - t0) / 1000;
      const count = done;
      closedLoop.push({
        in_flight: inFlight,
        groups: oneGroup ? 1 : groupCount,
        announced: postgresBus !== null && !postgresBus.solo,
        msg_s: Math.round(count / elapsed),
        mean_batch: round(batchSizes.reduce((a, b) => a + b, 0) / batchSizes.length),
      });
    }
    // The table has grown by the closed loops, and nothing has analyzed it: time a batch of 10
    // now, and again after ANALYZE (prepared statements keep a generic plan chosen on the empty
    // table until its statistics change).
    const grown: CommitCeiling["grown"] = [];
    const rows = url
      ? Number(
        (await sql<{ n: number }>`select count(*)::int as n from messages`.execute(db))
          .rows[0].n,
      )
      : 0;
    for (const analyzed of url ? [false, true] : []) {
      if (analyzed) await sql`analyze messages`.execute(db);
      timings.clear();
      const walls: number[] = [];
      for (let rep = 0; rep < 5; rep++) {
        const t0 = performance.now();
        await Promise.all(Array.from({ length: 10 }, submit));
        walls.push(performance.now() - t0);
      }
      walls.sort((a, b) => a - b);
      grown.push({ rows, analyzed, size: 10, ms: round(walls[2]), statements_ms: means() });
    }
    return {
      database: url ? "postgres" : "pglite",
      batches,
      closed_loop: closedLoop,
      open_loop: openLoop,
      grown,
    };
  } finally {
    await close();
  }
}

/**
 * Puts `bus` in the mode a loop measures: alone (no other listener: commits go without NOTIFY)
 * or announcing (a second bus listens). Waits, bounded, until the bus has switched.
 */
async function busMode(
  bus: PostgresBus,
  announced: boolean,
  url: string,
  db: Db,
  peer: () => PostgresBus | null,
  setPeer: (bus: PostgresBus | null) => void,
): Promise<void> {
  if (announced && !peer()) {
    setPeer(await PostgresBus.start({ url, db, instanceId: "bench-peer", log: silentLogger }));
  }
  if (!announced && peer()) {
    await peer()!.close();
    setPeer(null);
  }
  const deadline = Date.now() + 3 * SOLO_CHECK_MS;
  while (bus.solo === announced && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

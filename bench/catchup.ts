/**
 * @module
 * Catch-up: one device subscribes to a group holding `count` stored messages it has never
 * seen, and we time how long until its SDK session has received them all. The messages are
 * written straight into the relay's database with one `insert … select generate_series` (and
 * the group's `last_seq` set to match) — setup, not part of the measurement. For PGlite the
 * relay is stopped for the insert (one process owns the data directory) and started again.
 */

import { PGlite } from "@electric-sql/pglite";
import postgres from "postgres";
import { Session } from "../client/mod.ts";
import { type BenchDevice, rebind, registerDevices } from "./fleet.ts";
import { type RelayProcess, startRelay } from "./relay_process.ts";
import type { AckMode } from "./sessions.ts";
import { round } from "./stats.ts";
import { loadAverage, type Usage, UsageMeter } from "./system.ts";

const INSERT = `
  insert into messages (group_id, seq, sender_account, sender_device, client_id, body,
                        created_at, expires_at)
  select $1, s, $2, $3, 'c' || s, $4, $5, $6 from generate_series(1, $7::bigint) s`;
const SET_LAST = `update groups set last_seq = $2 where id = $1`;

/** One replay's timing. */
export type CatchupRun = {
  ack: AckMode;
  loadavg_before: number;
  messages: number;
  first_message_s: number;
  seconds: number;
  msg_s: number;
  usage: Usage;
};

/** The scenario's result. */
export type CatchupResult = {
  database: "postgres" | "pglite";
  stored: number;
  insert_s: number;
  runs: CatchupRun[];
};

/**
 * Fills a group with `count` messages and replays it once per ack mode, each time to a new
 * device. Returns the (possibly restarted) relay with the result.
 */
export async function catchupScenario(
  relay: RelayProcess,
  options: {
    count: number;
    acks: AckMode[];
    bodyBytes: number;
    databaseUrl?: string;
    postgresPid?: number;
  },
): Promise<{ relay: RelayProcess; result: CatchupResult }> {
  const { devices } = await registerDevices(relay.url, 1 + options.acks.length, 4);
  const owner = devices[0];
  let readers = devices.slice(1);
  const group = await owner.api.createGroup({ members: readers.map((d) => d.account) });
  const body = crypto.getRandomValues(new Uint8Array(options.bodyBytes));
  const now = Date.now();
  const params = [
    group.id,
    owner.account,
    owner.device,
    body,
    now,
    now + 7 * 86_400_000,
    options.count,
  ];
  const t0 = performance.now();
  if (options.databaseUrl) {
    const sql = postgres(options.databaseUrl, { max: 1, onnotice: () => {} });
    await sql.unsafe(INSERT, params as never[]);
    await sql.unsafe(SET_LAST, [group.id, options.count]);
    await sql.unsafe("analyze messages");
    await sql.end();
  } else {
    await relay.stop();
    const pg = await PGlite.create({ dataDir: `${relay.dataDir}/pg` });
    await pg.query(INSERT, params);
    await pg.query(SET_LAST, [group.id, options.count]);
    await pg.query("analyze messages");
    await pg.close();
    relay = await startRelay({ dataDir: relay.dataDir });
    // Tokens survive the restart (they live in the database); the port is new.
    readers = readers.map((d) => rebind(d, relay.url));
  }
  const insertS = (performance.now() - t0) / 1000;

  const runs: CatchupRun[] = [];
  for (let i = 0; i < options.acks.length; i++) {
    runs.push(
      await replayOnce(relay, readers[i], group.id, options.count, options.acks[i], options),
    );
  }
  return {
    relay,
    result: {
      database: options.databaseUrl ? "postgres" : "pglite",
      stored: options.count,
      insert_s: round(insertS),
      runs,
    },
  };
}

async function replayOnce(
  relay: RelayProcess,
  reader: BenchDevice,
  group: string,
  count: number,
  ack: AckMode,
  options: { postgresPid?: number },
): Promise<CatchupRun> {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const loadavg = loadAverage()[0];
  const meter = new UsageMeter(relay.pid, options.postgresPid);
  const t0 = performance.now();
  let first = 0;
  let received = 0;
  let session: Session | null = null;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("catch-up did not finish in 120 s")), 120_000);
    session = new Session(reader.api, {
      groups: [group],
      autoAck: ack !== "none",
      ...(ack === "every" ? { ackDelayMs: 0 } : {}),
      onMessage: () => {
        if (received++ === 0) first = performance.now();
        if (received === count) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  const seconds = (performance.now() - t0) / 1000;
  const usage = meter.stop();
  (session as Session | null)?.close();
  return {
    ack,
    loadavg_before: loadavg,
    messages: received,
    first_message_s: round((first - t0) / 1000),
    seconds: round(seconds),
    msg_s: Math.round(count / seconds),
    usage,
  };
}

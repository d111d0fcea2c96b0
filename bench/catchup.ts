/**
 * @module
 * Catch-up: one device subscribes to a group holding `count` stored messages it has never
 * seen, and we time how long until it has received them all — either through an SDK session
 * (which asks for batched replay, `msgs` frames) or through a bare protocol client that, like the
 * peer harness's driver (`../shared/peers/drivers/sealpost.mjs`), sends `sub` without `batch`
 * and so gets one `msg` frame per message (`frames`). The messages are
 * written straight into the relay's database with one `insert … select generate_series` (and
 * the group's `last_seq` set to match) — setup, not part of the measurement. For PGlite the
 * relay is stopped for the insert (one process owns the data directory) and started again.
 */

import { PGlite } from "@electric-sql/pglite";
import postgres from "postgres";
import { Session } from "../client/mod.ts";
import { readReplayPage } from "../relay/messages.ts";
import { openPostgres } from "../relay/store/database.ts";
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

/**
 * Who replays: `sdk` (an SDK `Session`, batched replay) or `frames` (a bare WebSocket client, one
 * `msg` frame per message, acks coalesced over 100 ms as the peer harness's driver does).
 */
export type CatchupClient = "sdk" | "frames";

/** One replay to run. */
export type CatchupSpec = { client: CatchupClient; ack: AckMode };

/** One replay's timing. */
export type CatchupRun = {
  client: CatchupClient;
  ack: AckMode;
  loadavg_before: number;
  messages: number;
  first_message_s: number;
  /** `frames` only: when `synced` arrived (after the whole replay, by the protocol). */
  synced_s: number | null;
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
 * Fills a group with `count` messages and replays it once per spec, each time to a new device.
 * Returns the (possibly restarted) relay with the result.
 */
export async function catchupScenario(
  relay: RelayProcess,
  options: {
    count: number;
    runs: CatchupSpec[];
    bodyBytes: number;
    databaseUrl?: string;
    postgresPid?: number;
  },
): Promise<{ relay: RelayProcess; result: CatchupResult }> {
  const { devices } = await registerDevices(relay.url, 1 + options.runs.length, 4);
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
    await sql.end({ timeout: 5 });
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
  for (let i = 0; i < options.runs.length; i++) {
    runs.push(
      await replayOnce(relay, readers[i], group.id, options.count, options.runs[i], options),
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
  spec: CatchupSpec,
  options: { postgresPid?: number },
): Promise<CatchupRun> {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const loadavg = loadAverage()[0];
  const meter = new UsageMeter(relay.pid, options.postgresPid);
  const t0 = performance.now();
  const times = spec.client === "frames"
    ? await framesReplay(relay.url, reader.api.token!, group, count)
    : await sdkReplay(reader, group, count, spec.ack);
  const seconds = (times.done - t0) / 1000;
  const usage = meter.stop();
  return {
    client: spec.client,
    ack: spec.ack,
    loadavg_before: loadavg,
    messages: times.received,
    first_message_s: round((times.first - t0) / 1000),
    synced_s: times.synced === null ? null : round((times.synced - t0) / 1000),
    seconds: round(seconds),
    msg_s: Math.round(count / seconds),
    usage,
  };
}

/** When a replay's first message arrived, when it ended (`performance.now()`), and how many came. */
export type ReplayTimes = {
  first: number;
  synced: number | null;
  done: number;
  received: number;
};

/**
 * Replays `count` messages of `group` through an SDK session (batched replay); shared by the
 * catch-up and growth scenarios. `pingIntervalMs` 0 keeps the session's own pings out of a long
 * replay.
 */
export async function sdkReplay(
  reader: BenchDevice,
  group: string,
  count: number,
  ack: AckMode,
  options: { timeoutMs?: number; pingIntervalMs?: number } = {},
): Promise<ReplayTimes> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  let first = 0;
  let received = 0;
  let session: Session | null = null;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`catch-up did not finish in ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      session = new Session(reader.api, {
        groups: [group],
        autoAck: ack !== "none",
        ...(ack === "every" ? { ackDelayMs: 0 } : {}),
        ...(options.pingIntervalMs === undefined ? {} : { pingIntervalMs: options.pingIntervalMs }),
        onMessage: () => {
          if (received++ === 0) first = performance.now();
          if (received === count) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    return { first, synced: null, done: performance.now(), received };
  } finally {
    (session as Session | null)?.close();
  }
}

/**
 * Replays through a bare protocol client: `hello` → `auth` → `sub` without `batch`, one `msg`
 * frame per message, `JSON.parse` of each, a cumulative `ack` at most every 100 ms.
 */
function framesReplay(
  url: string,
  token: string,
  group: string,
  count: number,
): Promise<ReplayTimes> {
  const ws = new WebSocket(url.replace(/^http/, "ws") + "/v1/ws");
  let first = 0;
  let synced: number | null = null;
  let done = 0;
  let received = 0;
  let last = 0;
  let acked = 0;
  let ackTimer: ReturnType<typeof setTimeout> | undefined;
  const sendAck = () => {
    ackTimer = undefined;
    if (last > acked && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ t: "ack", group, seq: last }));
      acked = last;
    }
  };
  return new Promise<ReplayTimes>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error("catch-up did not finish in 120 s")), 120_000);
    // Done at the last message; finished once `synced` (which follows the replay) came too.
    const finish = (error?: Error) => {
      clearTimeout(timer);
      if (ackTimer !== undefined) clearTimeout(ackTimer);
      ws.onclose = null;
      ws.close();
      if (error) reject(error);
      else resolve({ first, synced, done, received });
    };
    ws.onclose = (e) => finish(new Error(`socket closed ${e.code} ${e.reason}`));
    ws.onmessage = (e) => {
      const f = JSON.parse(e.data as string);
      if (f.t === "msg") {
        if (f.group !== group || f.seq <= last) return;
        last = f.seq;
        if (received++ === 0) first = performance.now();
        ackTimer ??= setTimeout(sendAck, 100);
        if (received < count) return;
        done = performance.now();
        if (synced !== null) finish();
      } else if (f.t === "hello") ws.send(JSON.stringify({ t: "auth", token }));
      else if (f.t === "ready") ws.send(JSON.stringify({ t: "sub", groups: [group] }));
      else if (f.t === "synced" && f.group === group) {
        synced = performance.now();
        if (received >= count) finish();
      } else if (f.t === "error") finish(new Error(`relay error: ${e.data}`));
    };
  });
}

/**
 * The database's read speed for a replay: the relay's own replay query (`readReplayPage`, 1,000
 * messages a page, each message's JSON built by Postgres) run back to back on one connection in
 * this process, nothing sent. Batched replay is measured against this.
 */
export async function replayReadCeiling(
  url: string,
  group: string,
  count: number,
): Promise<{ rows: number; pages: number; seconds: number; rows_s: number }> {
  const handle = openPostgres(url, { max: 1 });
  try {
    const device = "c".repeat(43);
    const t0 = performance.now();
    let after = 0;
    let rows = 0;
    let pages = 0;
    for (; pages < 1_000_000 && rows < count; pages++) {
      const page = await readReplayPage(handle.db, group, device, after, 1000, Date.now());
      rows += page.texts.length;
      after = page.last;
      if (!page.has_more) break;
    }
    const seconds = (performance.now() - t0) / 1000;
    return { rows, pages, seconds: round(seconds), rows_s: Math.round(rows / seconds) };
  } finally {
    await handle.close();
  }
}

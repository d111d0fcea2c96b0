/**
 * @module
 * Overload (issue 14): offer twice what the relay sustains for 30 s and check that it stays
 * bounded and honest. One relay on Postgres (the caller turns `fsync` on), `groups` × `size`
 * one-device accounts with one SDK session each, every member sending round-robin. First a
 * closed-loop probe: every session keeps `probeWindow` sends in flight for `probeS` seconds;
 * what was acknowledged per second is the rate the relay sustains here (on this machine, beside
 * this load generator — an open-loop probe past that rate only measures the generator drowning
 * in its own retries). Then twice that for
 * `durationS` seconds, open loop, while the relay's RSS is sampled every 250 ms. The SDK retries
 * every `unavailable` refusal after `retry_after_ms` under the same `client_id`, so the run
 * counts refusals (each is one retry), waits for every send to be answered, then reads back
 * which `client_id`s were stored: `lost` is acknowledged but not stored (must be 0), and a
 * `client_id` stored twice would be a duplicate.
 */

import postgres from "postgres";
import { type Fleet, relayFleet } from "./fanout.ts";
import type { RelayProcess } from "./relay_process.ts";
import { Latencies, type LatencySummary, round, sleep } from "./stats.ts";
import { loadAverage, mib, rssBytes } from "./system.ts";

/** Options of {@link overloadScenario}. */
export type OverloadOptions = {
  groups: number;
  size: number;
  /** Sends each session keeps in flight during the probe. */
  probeWindow: number;
  probeS: number;
  /** Multiple of the sustained rate offered (2). */
  factor: number;
  /** Offer this rate instead of `factor` × the probe's (the probe still runs, for the record). */
  rate?: number;
  durationS: number;
  bodyChars: number;
};

/** What the scenario measured. */
export type OverloadResult = {
  loadavg_before: number;
  sessions: number;
  probe: { in_flight: number; seconds: number; acked_rate: number };
  offered_rate: number;
  duration_s: number;
  offered: number;
  acked: number;
  /** Acknowledged per second, from the first send to the last acknowledgement. */
  acked_rate: number | null;
  /** `unavailable` answers, each retried by the SDK under the same `client_id`. */
  refusals: number;
  /** Other errors by code (a send the SDK gave up on lands here). */
  errors: Record<string, number>;
  /** Sends not answered when the wait ended. */
  unanswered: number;
  stored: number;
  lost: number;
  duplicates: number;
  rss_base_mib: number;
  rss_peak_mib: number;
  /** Peak during the offered window minus the RSS just before it. */
  rss_growth_mib: number;
  rss_end_mib: number;
  /** RSS per second of the offered window (MiB, max of the second's samples). */
  rss_timeline_mib: number[];
  send_to_ack: LatencySummary;
  /** Seconds after the last offered send until the last answer. */
  drain_s: number;
  reconnects: number;
};

/** Runs the scenario against `relay` on `databaseUrl`. */
export async function overloadScenario(
  relay: RelayProcess,
  databaseUrl: string,
  options: OverloadOptions,
): Promise<OverloadResult> {
  const fleet = await relayFleet(relay, options.groups, options.size, "sdk");
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  let refusals = 0;
  for (const session of fleet.sessions!.sessions) {
    session.on("error", (event) => {
      if (event.code === "unavailable") refusals++;
    });
  }
  try {
    const loadavg = loadAverage()[0];
    const probe = await closedLoop(fleet, options.probeWindow, options.probeS, options.bodyChars);
    const rate = options.rate ?? Math.max(1, Math.round(probe.acked_rate * options.factor));
    await sleep(2000);
    return await overloaded(relay, fleet, sql, {
      ...options,
      rate,
      loadavg,
      probe,
      refusals: () => refusals,
    });
  } finally {
    fleet.close();
    await sql.end({ timeout: 5 });
  }
}

/** Every session keeps `window` sends in flight for `seconds`; the acknowledged rate. */
async function closedLoop(
  fleet: Fleet,
  window: number,
  seconds: number,
  bodyChars: number,
): Promise<OverloadResult["probe"]> {
  const sessions = fleet.sessions!.sessions;
  const members = fleet.groups.flatMap((g) => g.members.map(() => g.id));
  let acked = 0;
  let next = 0;
  let stop = false;
  const t0 = performance.now();
  const loop = async (i: number) => {
    while (!stop) {
      const id = 500_000_000 + next++;
      await sessions[i].send(members[i], {
        body: `m${id}`.padEnd(bodyChars, "A"),
        client_id: `p${id}`,
      });
      if (!stop) acked++;
    }
  };
  const loops = sessions.flatMap((_, i) => Array.from({ length: window }, () => loop(i)));
  await sleep(seconds * 1000);
  stop = true;
  const elapsed = (performance.now() - t0) / 1000;
  const counted = acked;
  await Promise.allSettled(loops); // the sends in flight finish (bounded by the SDK's timeout)
  return {
    in_flight: sessions.length * window,
    seconds,
    acked_rate: Math.round(counted / elapsed),
  };
}

async function overloaded(
  relay: RelayProcess,
  fleet: Fleet,
  sql: postgres.Sql,
  o: OverloadOptions & {
    rate: number;
    loadavg: number;
    probe: OverloadResult["probe"];
    refusals: () => number;
  },
): Promise<OverloadResult> {
  const base = 1_000_000_000;
  const total = Math.round(o.rate * o.durationS);
  const acked = new Uint8Array(total);
  const answered = new Uint8Array(total);
  const sentAt = new Float64Array(total);
  const latencies = new Latencies();
  const errors: Record<string, number> = {};
  const members = fleet.groups.flatMap((g) => g.members.map(() => g.id));
  const sessions = fleet.sessions!.sessions;
  const reconnects0 = fleet.sessions!.reconnects();
  const refusals0 = o.refusals();
  const body = (id: number) => `m${id}`.padEnd(o.bodyChars, "A");
  let lastAnswer = 0;

  const rss0 = rssBytes(relay.pid);
  const samples: { t: number; rss: number }[] = [];
  const t0 = performance.now();
  const sampler = setInterval(() => {
    samples.push({ t: performance.now() - t0, rss: rssBytes(relay.pid) });
  }, 250);
  let sent = 0;
  try {
    // Open loop: whatever the answers do, the schedule goes on (at most `total` sends).
    await new Promise<void>((resolve) => {
      const interval = 1000 / o.rate;
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor((performance.now() - t0) / interval) + 1);
        for (; sent < due; sent++) {
          const k = sent;
          const i = k % sessions.length;
          sentAt[k] = performance.now();
          sessions[i].send(members[i], { body: body(base + k), client_id: String(base + k) })
            .then(() => {
              acked[k] = 1;
              latencies.add(performance.now() - sentAt[k]);
            }, (error: { code?: string }) => {
              const code = error?.code ?? "other";
              errors[code] = (errors[code] ?? 0) + 1;
            }).finally(() => {
              answered[k] = 1;
              lastAnswer = performance.now();
            });
        }
        if (sent >= total) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    const sendEnd = performance.now();
    // Every send is answered: acknowledged, or given up on by the SDK (bounded: 180 s).
    const deadline = sendEnd + 180_000;
    while (answered.reduce((n, a) => n + a, 0) < total && performance.now() < deadline) {
      await sleep(200);
    }
    const windowEnd = sendEnd - t0;
    clearInterval(sampler);
    const during = samples.filter((s) => s.t <= windowEnd + 1000);
    const peak = Math.max(rss0, ...during.map((s) => s.rss));
    const timeline: number[] = [];
    for (const s of during) {
      const second = Math.floor(s.t / 1000);
      timeline[second] = Math.max(timeline[second] ?? 0, mib(s.rss));
    }
    const groups = fleet.groups.map((g) => g.id);
    const rows = await sql<{ client_id: string; n: number }[]>`
      select client_id, count(*)::int as n from messages
      where group_id = any(${groups}) and length(client_id) = 10 and client_id >= ${String(base)}
      group by client_id`;
    const stored = new Uint8Array(total);
    let duplicates = 0;
    for (const row of rows) {
      const k = Number(row.client_id) - base;
      if (k >= 0 && k < total) stored[k] = 1;
      if (row.n > 1) duplicates += row.n - 1;
    }
    let lost = 0;
    let ackedCount = 0;
    for (let k = 0; k < total; k++) {
      if (acked[k]) ackedCount++;
      if (acked[k] && !stored[k]) lost++;
    }
    const firstToLast = (lastAnswer - t0) / 1000;
    return {
      loadavg_before: o.loadavg,
      sessions: sessions.length,
      probe: o.probe,
      offered_rate: o.rate,
      duration_s: o.durationS,
      offered: total,
      acked: ackedCount,
      acked_rate: firstToLast > 0 ? Math.round(ackedCount / firstToLast) : null,
      refusals: o.refusals() - refusals0,
      errors,
      unanswered: total - answered.reduce((n, a) => n + a, 0),
      stored: stored.reduce((n, s) => n + s, 0),
      lost,
      duplicates,
      rss_base_mib: mib(rss0),
      rss_peak_mib: mib(peak),
      rss_growth_mib: round(mib(peak) - mib(rss0)),
      rss_end_mib: mib(rssBytes(relay.pid)),
      rss_timeline_mib: timeline,
      send_to_ack: latencies.summary(),
      drain_s: round((lastAnswer - sendEnd) / 1000),
      reconnects: fleet.sessions!.reconnects() - reconnects0,
    };
  } finally {
    clearInterval(sampler);
  }
}

/** One line of the report. */
export function overloadLine(r: OverloadResult): string {
  return [
    `probe ${r.probe.in_flight} in flight → ${r.probe.acked_rate}/s acked;`,
    `offered ${r.offered_rate}/s × ${r.duration_s} s (${r.sessions} sessions):`,
    `acked ${r.acked}/${r.offered} (${r.acked_rate}/s), refusals ${r.refusals} (retried),`,
    `errors ${JSON.stringify(r.errors)}, unanswered ${r.unanswered},`,
    `stored ${r.stored}, lost ${r.lost}, duplicates ${r.duplicates};`,
    `RSS ${r.rss_base_mib} → peak ${r.rss_peak_mib} MiB (+${r.rss_growth_mib}), end ${r.rss_end_mib};`,
    `ack p50 ${r.send_to_ack.p50_ms} ms, p99 ${r.send_to_ack.p99_ms} ms; drain ${r.drain_s} s;`,
    `reconnects ${r.reconnects} (load ${r.loadavg_before})`,
  ].join(" ");
}

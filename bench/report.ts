/**
 * @module
 * The human-readable table printed at the end of `deno task bench` (the JSON in
 * `bench/results/` holds everything; this is the summary).
 */

import type { CatchupResult } from "./catchup.ts";
import type { RateResult } from "./fanout.ts";
import type { IdleResult } from "./idle.ts";

/** A fan-out row: which target, which database, and the measurement. */
export type FanoutRow = { target: string; result: RateResult };

function table(header: string[], rows: (string | number | null)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => c === null ? "-" : String(c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padStart(widths[i])).join("  ");
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)]
    .join("\n");
}

/** The fan-out table (relay and raw broadcast rows alike). */
export function fanoutTable(rows: FanoutRow[]): string {
  return table(
    [
      "target",
      "offered",
      "sent/s",
      "acked/s",
      "deliv/s",
      "p50",
      "p95",
      "p99",
      "ack p99",
      "lost",
      "errors",
      "srv cpu",
      "pg cpu",
      "gen cpu",
      "others",
      "rss MiB",
      "batch",
      "load1",
    ],
    rows.map(({ target, result: r }) => [
      target,
      r.load.offered_rate,
      r.load.sent_rate,
      r.load.acked_rate,
      r.load.delivery_rate,
      r.load.send_to_receive.p50_ms,
      r.load.send_to_receive.p95_ms,
      r.load.send_to_receive.p99_ms,
      r.load.send_to_ack?.p99_ms ?? null,
      r.load.drain_timed_out ? `${r.load.lost_messages} backlog` : r.load.lost_messages,
      Object.values(r.load.errors).reduce((a, b) => a + b, 0),
      `${r.usage.relay_cpu_pct}%`,
      r.usage.postgres_cpu_pct === null ? null : `${r.usage.postgres_cpu_pct}%`,
      `${r.usage.generator_cpu_pct}%`,
      `${r.usage.others_cpu_pct}%`,
      r.usage.relay_rss_mib_max,
      r.relay_metrics?.commit_batch_mean ?? null,
      r.loadavg_before,
    ]),
  );
}

/** The catch-up table. */
export function catchupTable(results: CatchupResult[]): string {
  return table(
    [
      "database",
      "stored",
      "client",
      "ack",
      "first msg s",
      "synced s",
      "all s",
      "msg/s",
      "relay cpu",
      "relay cpu-s",
      "gen cpu",
      "others cpu",
      "rss MiB",
      "load1",
    ],
    results.flatMap((c) =>
      c.runs.map((r) => [
        c.database,
        c.stored,
        r.client,
        r.ack,
        r.first_message_s,
        r.synced_s,
        r.seconds,
        r.msg_s,
        `${r.usage.relay_cpu_pct}%`,
        r.usage.relay_cpu_s,
        `${r.usage.generator_cpu_pct}%`,
        `${r.usage.others_cpu_pct}%`,
        r.usage.relay_rss_mib_max,
        r.loadavg_before,
      ])
    ),
  );
}

/** The idle-connections table. */
export function idleTable(
  relay: IdleResult,
  raw: { connections: number; base_rss_mib: number; rss_mib: number; per_conn_kib: number } | null,
): string {
  const rows: (string | number | null)[][] = [[
    "relay",
    relay.connections,
    relay.base_rss_mib,
    relay.rss_mib,
    relay.per_conn_kib,
    relay.connects_s,
    `${relay.idle_cpu_pct}%`,
    relay.loadavg_before,
  ]];
  if (raw) {
    rows.push([
      "bare Deno WS",
      raw.connections,
      raw.base_rss_mib,
      raw.rss_mib,
      raw.per_conn_kib,
      null,
      null,
      null,
    ]);
  }
  return table(
    ["target", "conns", "base MiB", "rss MiB", "KiB/conn", "connects/s", "idle cpu", "load1"],
    rows,
  );
}

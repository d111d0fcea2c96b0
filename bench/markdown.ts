/**
 * @module
 * Turns a results file into the Markdown tables of `bench/README.md`, so the report is copied
 * from a run rather than retyped.
 *
 * @example
 * ```sh
 * deno run -A bench/markdown.ts bench/results/2026-11-22T004647.json
 * ```
 */

// deno-lint-ignore no-explicit-any
type Json = any;

function table(header: string[], rows: (string | number | null | undefined)[][]): string {
  const line = (cells: (string | number | null | undefined)[]) =>
    `| ${cells.map((c) => c === null || c === undefined ? "–" : String(c)).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

const pct = (v: number | null | undefined) => v === null || v === undefined ? null : `${v} %`;

/** The fan-out table: the bare-WebSocket ceiling and the relay at each rate. */
export function fanoutMarkdown(r: Json): string {
  const rows: Json[] = [];
  for (const b of r.ceilings?.ws_broadcast ?? []) rows.push({ target: "bare WS", ...b });
  for (const f of r.fanout?.runs ?? []) {
    rows.push({ target: f.fsync === "on" ? "relay, Postgres fsync on" : "relay, Postgres", ...f });
  }
  for (const p of r.pglite?.runs ?? []) rows.push({ target: "relay, PGlite", ...p });
  return table(
    [
      "target",
      "offered msg/s",
      "acked msg/s",
      "deliveries/s",
      "p50 ms",
      "p95 ms",
      "p99 ms",
      "ack p99 ms",
      "lost",
      "errors",
      "server CPU",
      "Postgres CPU",
      "generator CPU",
      "others CPU",
      "server RSS MiB",
      "mean batch",
      "load1",
    ],
    rows.map((x) => [
      x.target,
      x.load.offered_rate,
      x.load.acked_rate,
      x.load.delivery_rate,
      x.load.send_to_receive.p50_ms,
      x.load.send_to_receive.p95_ms,
      x.load.send_to_receive.p99_ms,
      x.load.send_to_ack?.p99_ms,
      x.load.drain_timed_out ? `${x.load.lost_messages} (backlog)` : x.load.lost_messages,
      Object.values(x.load.errors as Record<string, number>).reduce((a, b) => a + b, 0),
      pct(x.usage.relay_cpu_pct),
      pct(x.usage.postgres_cpu_pct),
      pct(x.usage.generator_cpu_pct),
      pct(x.usage.others_cpu_pct),
      x.usage.relay_rss_mib_max,
      x.relay_metrics?.commit_batch_mean,
      x.loadavg_before,
    ]),
  );
}

/** The catch-up table with its ceilings. */
export function catchupMarkdown(r: Json): string {
  const rows: (string | number | null)[][] = [];
  for (const c of r.catchup ?? []) {
    for (const run of c.runs) {
      rows.push([
        `relay, ${c.database === "postgres" ? "Postgres" : "PGlite"}`,
        run.client === "frames" ? "one `msg` frame each" : "SDK (batched)",
        run.ack,
        run.first_message_s,
        run.seconds,
        run.msg_s,
        pct(run.usage.relay_cpu_pct),
        run.usage.relay_cpu_s ?? null,
        pct(run.usage.generator_cpu_pct),
        pct(run.usage.others_cpu_pct),
        run.usage.relay_rss_mib_max,
        run.loadavg_before,
      ]);
    }
  }
  const read = r.ceilings?.postgres_read;
  if (read) {
    rows.push(["Postgres paged read (500/page)", null, null, null, read.seconds, read.rows_s]);
  }
  const replay = r.ceilings?.replay_read;
  if (replay) {
    rows.push([
      "replay pages read (the relay's query)",
      null,
      null,
      null,
      replay.seconds,
      replay.rows_s,
    ]);
  }
  const push = r.ceilings?.ws_push;
  if (push) {
    rows.push(["bare WS push + client JSON.parse", null, null, null, push.seconds, push.msg_s]);
  }
  return table(
    [
      "target",
      "client",
      "acks",
      "first message s",
      "all 100k s",
      "msg/s",
      "relay CPU",
      "relay CPU-s",
      "generator CPU",
      "others CPU",
      "relay RSS MiB",
      "load1",
    ],
    rows,
  );
}

/** The idle-connections table. */
export function idleMarkdown(r: Json): string {
  const rows: (string | number | null)[][] = [];
  if (r.idle) {
    rows.push([
      "relay (authenticated, subscribed)",
      r.idle.connections,
      r.idle.base_rss_mib,
      r.idle.rss_mib,
      r.idle.per_conn_kib,
      r.idle.connects_s,
      pct(r.idle.idle_cpu_pct),
    ]);
  }
  const raw = r.ceilings?.ws_idle;
  if (raw) {
    rows.push([
      "bare Deno WebSocket",
      raw.connections,
      raw.base_rss_mib,
      raw.rss_mib,
      raw.per_conn_kib,
    ]);
  }
  return table(
    [
      "target",
      "connections",
      "baseline RSS MiB",
      "RSS MiB",
      "KiB/connection",
      "connects/s",
      "idle CPU",
    ],
    rows,
  );
}

/** Database and group-commit ceilings. */
export function ceilingsMarkdown(r: Json): string {
  const c = r.ceilings ?? {};
  const out: string[] = [];
  const pg = c.postgres_insert;
  const lite = c.pglite_insert;
  out.push(table(["insert into a `messages`-shaped table", "Postgres rows/s", "PGlite rows/s"], [
    [
      "1,000-row INSERT … VALUES (a parameter per cell, as Kysely)",
      pg?.multi_row_insert_rows_s,
      lite?.multi_row_insert_rows_s,
    ],
    ["1,000-row INSERT … SELECT FROM unnest(8 arrays)", pg?.unnest_insert_rows_s, null],
    ["COPY", pg?.copy_rows_s, null],
    [
      "single-row autocommit INSERT",
      pg?.single_row_autocommit_rows_s,
      lite?.single_row_autocommit_rows_s,
    ],
  ]));
  for (const g of c.group_commit ?? []) {
    out.push(
      `\nGroup commit alone (\`relay/persist.ts\` in the generator process), ${g.database}:\n`,
    );
    out.push(table(
      ["forced batch", "ms", "per statement (mean ms)"],
      g.batches.map((b: Json) => [
        b.size,
        b.ms,
        Object.entries(b.statements_ms).map(([k, v]) => `${k} ${v}`).join(", "),
      ]),
    ));
    if (g.open_loop?.length) {
      out.push("");
      out.push(table(
        [
          "open loop msg/s",
          "achieved",
          "mean batch",
          "commit p50 ms",
          "commit p99 ms",
          "CPU (this process)",
          "Postgres CPU",
        ],
        g.open_loop.map((o: Json) => [
          o.rate,
          o.achieved,
          o.mean_batch,
          o.commit.p50_ms,
          o.commit.p99_ms,
          pct(o.cpu_pct),
          pct(o.postgres_cpu_pct),
        ]),
      ));
    }
    if (g.closed_loop?.length) {
      out.push("");
      out.push(table(
        ["closed loop, sends in flight", "groups", "NOTIFY", "msg/s", "mean batch"],
        g.closed_loop.map((
          o: Json,
        ) => [
          o.in_flight,
          o.groups ?? "",
          o.announced === undefined ? "" : o.announced ? "yes" : "no",
          o.msg_s,
          o.mean_batch,
        ]),
      ));
    }
    if (g.grown?.length) {
      out.push("");
      out.push(table(
        ["batch of 10 after", "rows in messages", "ms", "dedupe ms"],
        g.grown.map((o: Json) => [
          o.analyzed ? "ANALYZE" : "no ANALYZE",
          o.rows,
          o.ms,
          o.statements_ms.dedupe,
        ]),
      ));
    }
  }
  if (c.ws_echo) {
    out.push(
      `\nBare WebSocket echo: ${c.ws_echo.msg_s} msg/s at ${c.ws_echo.connections} connections ` +
        `(4 in flight each; round trip p50 ${c.ws_echo.rtt.p50_ms} ms, p99 ${c.ws_echo.rtt.p99_ms} ms; ` +
        `server CPU ${c.ws_echo.server_cpu_pct} %).`,
    );
  }
  return out.join("\n");
}

if (import.meta.main) {
  const r = JSON.parse(await Deno.readTextFile(Deno.args[0]));
  console.log(`Run ${r.date} at ${r.git?.head}, load at start ${r.loadavg_start?.join(" ")}\n`);
  console.log("### Fan-out\n\n" + fanoutMarkdown(r));
  console.log("\n### Catch-up\n\n" + catchupMarkdown(r));
  console.log("\n### Idle connections\n\n" + idleMarkdown(r));
  console.log("\n### Ceilings\n\n" + ceilingsMarkdown(r));
}

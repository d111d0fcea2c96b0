/**
 * @module
 * Scale-out benchmark: the same steady fan-out (groups of 6, every device sending) against one
 * relay process and against three relay processes on the same Postgres, with each device's
 * session on instance `i mod n` — so most deliveries cross instances through LISTEN/NOTIFY.
 * On one 2-core machine three instances share the same cores as one: this measures the cost of
 * the cross-instance path (notify, per-instance read-back), not added capacity.
 *
 * ```sh
 * deno run -A bench/cluster.ts --rate 1000,2500 --duration 10 --groups 50
 * ```
 */

import { parseArgs } from "node:util";
import { Session } from "../client/mod.ts";
import { type BenchDevice, createGroups, registerDevices } from "./fleet.ts";
import { bodyChars, type LoadClient, type LoadResult, LoadRun } from "./load.ts";
import { postmasterPid, startPostgres } from "./postgres.ts";
import { type RelayProcess, startRelay } from "./relay_process.ts";
import { pool, sleep } from "./stats.ts";
import { cpuSeconds, loadAverage, machineInfo, rssBytes, treeCpuSeconds } from "./system.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "1000,2500" },
    duration: { type: "string", default: "10" },
    groups: { type: "string", default: "50" },
    "group-size": { type: "string", default: "6" },
    instances: { type: "string", default: "1,3" },
    out: { type: "string" },
  },
});
const rates = values.rate.split(",").map(Number);
const durationS = Number(values.duration);
const groupCount = Number(values.groups);
const size = Number(values["group-size"]);
const counts = values.instances.split(",").map(Number);
const BODY = bodyChars(256);

type Row = {
  instances: number;
  rate: number;
  loadavg_before: number;
  load: LoadResult;
  relay_cpu_pct: number;
  postgres_cpu_pct: number;
  relay_rss_mb: number;
};

let nextId = 1;

async function runCluster(n: number): Promise<Row[]> {
  const pg = await startPostgres();
  const relays: RelayProcess[] = [];
  try {
    const url = await pg.createDatabase();
    const cpuProfDir = Deno.env.get("BENCH_CPU_PROF") || undefined;
    relays.push(await startRelay({ databaseUrl: url, cpuProfDir }));
    for (let i = 1; i < n; i++) relays.push(await startRelay({ databaseUrl: url }));
    const { devices } = await registerDevices(relays[0].url, groupCount * size);
    const groups = await createGroups(devices, size);
    let current: LoadRun | null = null;
    const members = groups.flatMap((g) => g.members.map((m: BenchDevice) => ({ m, group: g.id })));
    const sessions = await pool(
      members.map((x, i) => ({ ...x, i })),
      100,
      ({ m, group, i }) =>
        new Promise<Session>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("not synced in 60 s")), 60_000);
          const relay = relays[i % relays.length];
          const session: Session = new Session(m.api, {
            url: relay.url.replace("http", "ws") + "/v1/ws",
            groups: [group],
            onMessage: (message) => current?.onReceive(message.body),
            onSynced: () => {
              clearTimeout(timer);
              resolve(session);
            },
          });
        }),
    );
    const clients: LoadClient[] = sessions.map((session, i) => ({
      send: (body: string, id: number) =>
        session.send(members[i].group, { body, client_id: String(id) }).then(() => {}),
    }));
    const rows: Row[] = [];
    for (const rate of rates) {
      await sleep(2000);
      const loadavg = loadAverage()[0];
      const run = new LoadRun(nextId, rate, durationS, size, BODY);
      nextId += run.total;
      current = run;
      const t0 = performance.now();
      const cpu0 = relays.reduce((s, r) => s + cpuSeconds(r.pid), 0);
      const pg0 = treeCpuSeconds(postmasterPid(pg));
      let rss = 0;
      const sampler = setInterval(() => {
        rss = Math.max(rss, relays.reduce((s, r) => s + rssBytes(r.pid), 0));
      }, 250);
      let cpu = 0;
      let pgCpu = 0;
      const load = await run.run(clients, 10, () => {
        const s = (performance.now() - t0) / 1000;
        cpu = (relays.reduce((sum, r) => sum + cpuSeconds(r.pid), 0) - cpu0) / s * 100;
        pgCpu = (treeCpuSeconds(postmasterPid(pg)) - pg0) / s * 100;
      });
      clearInterval(sampler);
      current = null;
      if (Deno.env.get("BENCH_DEBUG")) {
        for (const r of relays) {
          const m = await r.metrics();
          const pick = [...m].filter(([k]) =>
            /deliveries_total|bus_lag_seconds_(sum|count)|db_query_seconds_count|batch_size_(sum|count)|send_commit_seconds_(sum|count)/
              .test(k)
          );
          console.log(r.url, JSON.stringify(Object.fromEntries(pick)));
        }
      }
      rows.push({
        instances: n,
        rate,
        loadavg_before: loadavg,
        load,
        relay_cpu_pct: Math.round(cpu),
        postgres_cpu_pct: Math.round(pgCpu),
        relay_rss_mb: Math.round(rss / 1048576),
      });
      const l = load;
      console.log(
        `${n} instance(s) @ ${rate}/s: sent ${l.sent_rate}/s, delivered ${
          Math.round(l.delivery_rate)
        }/s, ` +
          `p50 ${l.send_to_receive.p50_ms} ms, p99 ${l.send_to_receive.p99_ms} ms, lost ${l.lost_messages}, ` +
          `errors ${JSON.stringify(l.errors)}, relays CPU ${Math.round(cpu)}%, Postgres CPU ${
            Math.round(pgCpu)
          }%`,
      );
    }
    for (const s of sessions) s.close();
    return rows;
  } finally {
    await Promise.all(relays.map((r) => r.stop()));
    await pg.destroy();
  }
}

const results: Row[] = [];
for (const n of counts) results.push(...await runCluster(n));
const out = values.out ??
  `bench/results/cluster-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
await Deno.mkdir("bench/results", { recursive: true });
await Deno.writeTextFile(
  out,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      machine: machineInfo(),
      groups: groupCount,
      size,
      durationS,
      results,
    },
    null,
    2,
  ) + "\n",
);
console.log(`wrote ${out}`);

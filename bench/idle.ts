/**
 * @module
 * Many idle connections: `n` devices (one-device accounts in groups of 10) each hold one
 * authenticated WebSocket subscribed to its group. Registration runs on one relay process;
 * then a fresh relay process is started on the same database, so the baseline is an idle relay
 * that has not yet allocated anything for registrations, and the growth after `n` sessions
 * connect is what the connections cost. Idle CPU is the relay's CPU-seconds over `idleSeconds`
 * (60 by default) with every connection open and nothing sent, after 5 s to settle (a count of
 * work, so less sensitive to a shared machine than a latency); with `cpuProfDir` the idle relay
 * writes a V8 CPU profile (it covers the connects too: read the idle part by its functions).
 */

import { createGroups, rebind, registerDevices } from "./fleet.ts";
import { type RelayProcess, startRelay } from "./relay_process.ts";
import { openSessions } from "./sessions.ts";
import { round, sleep } from "./stats.ts";
import { cpuSeconds, loadAverage, mib, rssBytes } from "./system.ts";

/** The scenario's result. */
export type IdleResult = {
  connections: number;
  loadavg_before: number;
  registration_s: number;
  registrations_s: number;
  connect_s: number;
  connects_s: number;
  base_rss_mib: number;
  rss_mib: number;
  per_conn_kib: number;
  /** CPU of the relay over `idle_s` with every connection open and idle. */
  idle_cpu_pct: number;
  idle_s: number;
  idle_cpu_s: number;
  /** The idle CPU-seconds by thread name (from `/proc/<pid>/task`), largest first. */
  idle_cpu_by_thread: Record<string, number>;
  reconnects: number;
};

/** Runs the scenario; returns the fresh relay it started (to stop) with the result. */
export async function idleScenario(
  first: RelayProcess,
  n: number,
  databaseUrl: string | undefined,
  options: { idleSeconds?: number; cpuProfDir?: string } = {},
): Promise<{ relay: RelayProcess; result: IdleResult }> {
  const idleSeconds = options.idleSeconds ?? 60;
  const loadavg = loadAverage()[0];
  const { devices, seconds } = await registerDevices(first.url, n, 64);
  const groups = await createGroups(devices, 10, 32);
  await first.stop();
  const relay = await startRelay({
    databaseUrl,
    dataDir: first.dataDir,
    cpuProfDir: options.cpuProfDir,
  });
  // Warm the connection path once, then let the process settle.
  const members = groups.flatMap((g) =>
    g.members.map((m) => ({ api: rebind(m, relay.url).api, group: g.id }))
  );
  const warm = await openSessions([members[0]], "sdk", () => {});
  warm.close();
  await sleep(3000);
  const base = rssBytes(relay.pid);
  const sessions = await openSessions(members, "sdk", () => {}, 200);
  await sleep(5000);
  const cpu0 = cpuSeconds(relay.pid);
  const threads0 = threadTicks(relay.pid);
  const t0 = performance.now();
  const samples: number[] = [];
  for (let i = 0; i < idleSeconds; i++) {
    await sleep(1000);
    samples.push(rssBytes(relay.pid));
  }
  const cpuS = cpuSeconds(relay.pid) - cpu0;
  const byThread = new Map<string, number>();
  for (const [tid, { name, ticks }] of threadTicks(relay.pid)) {
    const spent = (ticks - (threads0.get(tid)?.ticks ?? 0)) / 100;
    byThread.set(name, (byThread.get(name) ?? 0) + spent);
  }
  const cpu = cpuS / ((performance.now() - t0) / 1000) * 100;
  const rss = samples.reduce((a, b) => a + b, 0) / samples.length;
  const reconnects = sessions.reconnects();
  sessions.close();
  await sleep(1000);
  return {
    relay,
    result: {
      connections: members.length,
      loadavg_before: loadavg,
      registration_s: round(seconds),
      registrations_s: Math.round(n / seconds),
      connect_s: round(sessions.seconds),
      connects_s: Math.round(members.length / sessions.seconds),
      base_rss_mib: mib(base),
      rss_mib: mib(rss),
      per_conn_kib: Math.round((rss - base) / members.length / 1024 * 10) / 10,
      idle_cpu_pct: Math.round(cpu * 10) / 10,
      idle_s: idleSeconds,
      idle_cpu_s: round(cpuS),
      idle_cpu_by_thread: Object.fromEntries(
        [...byThread].filter(([, s]) => s > 0).sort((a, b) => b[1] - a[1])
          .map(([name, s]) => [name, round(s)]),
      ),
      reconnects,
    },
  };
}

/** utime + stime ticks (USER_HZ, 100 on Linux) of each thread of `pid`, with its name. */
function threadTicks(pid: number): Map<number, { name: string; ticks: number }> {
  const out = new Map<number, { name: string; ticks: number }>();
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
        // The name is in parentheses and may hold spaces; the fields after it are fixed.
        const close = stat.lastIndexOf(")");
        const name = stat.slice(stat.indexOf("(") + 1, close);
        const fields = stat.slice(close + 2).split(" ");
        out.set(Number(entry.name), { name, ticks: Number(fields[11]) + Number(fields[12]) });
      } catch { /* the thread ended */ }
    }
  } catch { /* the process ended */ }
  return out;
}

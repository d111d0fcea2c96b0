/**
 * @module
 * Many idle connections: `n` devices (one-device accounts in groups of 10) each hold one
 * authenticated WebSocket subscribed to its group. Registration runs on one relay process;
 * then a fresh relay process is started on the same database, so the baseline is an idle relay
 * that has not yet allocated anything for registrations, and the growth after `n` sessions
 * connect is what the connections cost.
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
  /** CPU of the relay over 5 s with every connection open and idle. */
  idle_cpu_pct: number;
  reconnects: number;
};

/** Runs the scenario; returns the fresh relay it started (to stop) with the result. */
export async function idleScenario(
  first: RelayProcess,
  n: number,
  databaseUrl: string | undefined,
): Promise<{ relay: RelayProcess; result: IdleResult }> {
  const loadavg = loadAverage()[0];
  const { devices, seconds } = await registerDevices(first.url, n, 64);
  const groups = await createGroups(devices, 10, 32);
  await first.stop();
  const relay = await startRelay({ databaseUrl, dataDir: first.dataDir });
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
  const t0 = performance.now();
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    await sleep(1000);
    samples.push(rssBytes(relay.pid));
  }
  const cpu = (cpuSeconds(relay.pid) - cpu0) / ((performance.now() - t0) / 1000) * 100;
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
      reconnects,
    },
  };
}

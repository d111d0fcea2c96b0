/**
 * @module
 * Far from the primary: the relay talks to Postgres through {@link startDelayProxy}, which adds
 * `delayMs` each way (40 ms ≈ ams↔iad, the Fly multi-region setup), and one device sends
 * `sends` messages one after another over HTTP (time to its `201`), then as many over a WebSocket
 * session (time to its `sent`). The same runs first against a relay connected directly, for the
 * baseline. A commit is one round trip (2 × `delayMs`); an HTTP send adds its token lookup and the
 * invitation check, a WebSocket send (authenticated once) adds nothing.
 */

import { Session } from "../client/mod.ts";
import { startDelayProxy } from "./delay_proxy.ts";
import { registerDevices } from "./fleet.ts";
import { startRelay } from "./relay_process.ts";
import { Latencies, type LatencySummary } from "./stats.ts";
import { loadAverage } from "./system.ts";

/** One relay's sequential sends. */
export type FarRun = {
  delay_ms_each_way: number;
  loadavg_before: number;
  sends: number;
  /** Time to the `201`, ms. */
  latency: LatencySummary;
  /** p50 divided by the round trip (2 × delay): the round trips a send waits for. */
  round_trips_p50: number | null;
  /** The same over one WebSocket session: time to the `sent` frame, ms. */
  ws_latency: LatencySummary;
  ws_round_trips_p50: number | null;
};

/** Runs `sends` sequential HTTP sends through a relay on `databaseUrl`, delayed by `delayMs`. */
export async function farRun(
  databaseUrl: string,
  delayMs: number,
  sends: number,
): Promise<FarRun> {
  const loadavg = loadAverage()[0];
  const url = new URL(databaseUrl);
  const proxy = delayMs > 0 ? startDelayProxy(Number(url.port), delayMs) : null;
  if (proxy) url.port = String(proxy.port);
  const relay = await startRelay({ databaseUrl: url.toString() });
  try {
    const { devices } = await registerDevices(relay.url, 1, 1);
    const [device] = devices;
    const group = await device.api.createGroup();
    const body = "A".repeat(344);
    // Warm-up sends (statements get prepared on the connections they use).
    for (let i = 0; i < 3; i++) await device.api.send(group.id, { body, client_id: `warm${i}` });
    const latencies = new Latencies();
    for (let i = 0; i < sends; i++) {
      const t0 = performance.now();
      const sent = await device.api.send(group.id, { body, client_id: `far${i}` });
      latencies.add(performance.now() - t0);
      if (sent.status !== 201) throw new Error(`send ${i} answered ${sent.status}`);
    }
    const latency = latencies.summary();
    const session = new Session(device.api, { groups: [group.id] });
    const wsLatencies = new Latencies();
    try {
      await session.ready();
      for (let i = 0; i < 3; i++) await session.send(group.id, { body, client_id: `wswarm${i}` });
      for (let i = 0; i < sends; i++) {
        const t0 = performance.now();
        await session.send(group.id, { body, client_id: `ws${i}` });
        wsLatencies.add(performance.now() - t0);
      }
    } finally {
      session.close();
    }
    const ws = wsLatencies.summary();
    const trips = (ms: number) => delayMs > 0 ? Math.round(ms / (2 * delayMs) * 10) / 10 : null;
    return {
      delay_ms_each_way: delayMs,
      loadavg_before: loadavg,
      sends,
      latency,
      round_trips_p50: trips(latency.p50_ms),
      ws_latency: ws,
      ws_round_trips_p50: trips(ws.p50_ms),
    };
  } finally {
    await relay.stop();
    await proxy?.close();
  }
}

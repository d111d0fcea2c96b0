/**
 * @module
 * Far from the primary: the relay talks to Postgres through {@link startDelayProxy}, which adds
 * `delayMs` each way (40 ms ≈ ams↔iad, the Fly multi-region setup), and one device sends
 * `sends` messages one after another over HTTP; each send's time to its `201` is measured. The
 * same runs first against a relay connected directly, for the baseline. With one round trip per
 * commit a send costs about one round trip (2 × `delayMs`) plus the local time.
 */

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
    return {
      delay_ms_each_way: delayMs,
      loadavg_before: loadavg,
      sends,
      latency,
      round_trips_p50: delayMs > 0 ? Math.round(latency.p50_ms / (2 * delayMs) * 10) / 10 : null,
    };
  } finally {
    await relay.stop();
    await proxy?.close();
  }
}

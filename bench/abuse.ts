/**
 * @module
 * The abuse scenario: what hostile clients cost a relay with default limits. At once, `clients`
 * requests each stream a `bodyMiB` body (64 MiB by default) at four routes — `POST /v1/ack` and
 * a send with a token, `POST /v1/auth/login` and the admin login form without one — while
 * `sockets` WebSockets (1,000) connect and never authenticate. The relay runs as its own process
 * on embedded PGlite (the homelab default); its RSS is sampled every 100 ms and `/readyz` timed
 * every 250 ms throughout. Goals (issue 12): RSS growth under 100 MiB, `/readyz` fast.
 *
 * Every socket comes from this machine's one address, so the per-address cap on pending sockets
 * refuses most of them. The `spread` variant stands in for a botnet: it lifts that cap
 * (`SEALPOST_MAX_PENDING_SOCKETS_PER_IP`) so the total cap bounds them, and each socket sends one
 * `frameKiB` frame before `auth` (which Deno reads whole before the relay can refuse it).
 */

import { createDeviceIdentity, HttpClient } from "../client/mod.ts";
import { startRelay } from "./relay_process.ts";
import { SETTINGS } from "../relay/config/settings.ts";
import { Latencies, type LatencySummary, pool, round, sleep } from "./stats.ts";
import { loadAverage, mib, rssBytes } from "./system.ts";

/** What to throw at the relay. */
export type AbuseOptions = {
  clients: number;
  bodyMiB: number;
  sockets: number;
  /** Lift the per-address socket cap and send a `frameKiB` frame on each socket before auth. */
  spread: boolean;
  frameKiB: number;
};

/** The scenario's result. */
export type AbuseResult = AbuseOptions & {
  database: "pglite";
  loadavg_before: number;
  base_rss_mib: number;
  peak_rss_mib: number;
  growth_mib: number;
  /** RSS 3 s after the last body was answered and the sockets closed. */
  after_rss_mib: number;
  /** How each big body was answered: `<status>` or `reset` (the relay closed the connection). */
  bodies: Record<string, number>;
  bodies_s: number;
  /** Sockets the relay upgraded, and those refused at the upgrade. */
  sockets_open: number;
  sockets_refused: number;
  /** Close codes the relay gave unauthenticated sockets while the scenario ran. */
  socket_closes: Record<string, number>;
  readyz: LatencySummary & { failures: number };
  goals: { rss_growth_under_100_mib: boolean; readyz_max_under_1_s: boolean };
};

const CHUNK = 256 * 1024;

/** A body of `bytes` that starts with `prefix` and is then `A`s, produced as it is sent. */
function streamedBody(prefix: string, bytes: number): ReadableStream<Uint8Array> {
  const head = new TextEncoder().encode(prefix);
  const filler = new Uint8Array(CHUNK).fill(0x41);
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      const chunk = sent === 0 ? head : filler.slice(0, Math.min(CHUNK, bytes - sent));
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

/** Runs the scenario against a fresh PGlite relay process. */
export async function abuseScenario(options: AbuseOptions): Promise<AbuseResult> {
  const loadavg = loadAverage()[0];
  const relay = await startRelay({
    // The default caps (relay_process lifts them for the other scenarios); `spread` lifts only
    // the per-address one.
    env: {
      SEALPOST_MAX_PENDING_SOCKETS: SETTINGS.maxPendingSockets.default!,
      SEALPOST_MAX_PENDING_SOCKETS_PER_IP: options.spread
        ? String(options.sockets)
        : SETTINGS.maxPendingSocketsPerIp.default!,
    },
  });
  const ws = relay.url.replace(/^http/, "ws") + "/v1/ws";
  const sockets: WebSocket[] = [];
  try {
    const identity = await createDeviceIdentity();
    const api = new HttpClient(relay.url);
    const { token } = await api.register(identity);
    const group = (await api.createGroup()).id;
    await api.send(group, { body: "d2FybQ" });
    await sleep(2000);
    let base = 0;
    for (let i = 0; i < 5; i++, await sleep(200)) base += rssBytes(relay.pid) / 5;

    let peak = base;
    let running = true;
    const sampler = (async () => {
      while (running) {
        peak = Math.max(peak, rssBytes(relay.pid));
        await sleep(100);
      }
    })();
    const readyz = new Latencies();
    let readyzFailures = 0;
    const prober = (async () => {
      while (running) {
        const t0 = performance.now();
        try {
          const answer = await fetch(`${relay.url}/readyz`, { signal: AbortSignal.timeout(5000) });
          await answer.body?.cancel();
          if (answer.status !== 200) readyzFailures++;
        } catch {
          readyzFailures++;
        }
        readyz.add(performance.now() - t0);
        await sleep(250);
      }
    })();

    // 1,000 sockets that connect and never authenticate.
    let open = 0;
    let refused = 0;
    let ending = false;
    const frame = `{"t":"auth","token":"${"A".repeat(options.frameKiB * 1024)}"}`;
    const closes: Record<string, number> = {};
    const opening = pool(
      Array.from({ length: options.sockets }, (_, i) => i),
      100,
      () =>
        new Promise<void>((resolve) => {
          const socket = new WebSocket(ws);
          sockets.push(socket);
          let opened = false;
          // A socket neither opened nor refused within 10 s counts as refused.
          const timer = setTimeout(() => {
            if (!opened) refused++;
            resolve();
          }, 10_000);
          socket.onopen = () => {
            opened = true;
            open++;
            clearTimeout(timer);
            if (options.spread) socket.send(frame);
            resolve();
          };
          socket.onerror = () => {};
          socket.onclose = (e) => {
            if (!opened) {
              clearTimeout(timer);
              refused++;
              resolve();
            } else if (!ending) closes[e.code] = (closes[e.code] ?? 0) + 1;
          };
        }),
    );

    // 50 clients, each streaming a 64 MiB body.
    const bytes = options.bodyMiB * 1024 * 1024;
    const routes = [
      { path: "/v1/ack", token, prefix: '{"cursors":{"x":"', type: "application/json" },
      { path: "/v1/auth/login", prefix: '{"device":"', type: "application/json" },
      {
        path: `/v1/groups/${group}/messages`,
        token,
        prefix: '{"body":"',
        type: "application/json",
      },
      {
        path: "/admin/login",
        prefix: "password=",
        type: "application/x-www-form-urlencoded",
      },
    ];
    const bodies: Record<string, number> = {};
    const t0 = performance.now();
    const sending = Promise.all(Array.from({ length: options.clients }, async (_, i) => {
      const route = routes[i % routes.length];
      const headers: Record<string, string> = { "content-type": route.type };
      if (route.token) headers.authorization = `Bearer ${route.token}`;
      let outcome: string;
      try {
        const answer = await fetch(`${relay.url}${route.path}`, {
          method: "POST",
          headers,
          body: streamedBody(route.prefix, bytes),
          signal: AbortSignal.timeout(120_000),
          redirect: "manual",
          duplex: "half",
        } as RequestInit);
        await answer.body?.cancel();
        outcome = String(answer.status);
      } catch {
        outcome = "reset";
      }
      bodies[outcome] = (bodies[outcome] ?? 0) + 1;
    }));
    await Promise.all([opening, sending]);
    const bodiesS = (performance.now() - t0) / 1000;
    // Hold on past the relay's 10 s auth timeout, so its closes are part of the run.
    await sleep(Math.max(1000, 12_000 - (performance.now() - t0)));
    running = false;
    ending = true;
    await Promise.all([sampler, prober]);
    for (const socket of sockets) socket.close();
    await sleep(3000);
    const after = rssBytes(relay.pid);
    const summary = readyz.summary();
    return {
      ...options,
      database: "pglite",
      loadavg_before: loadavg,
      base_rss_mib: mib(base),
      peak_rss_mib: mib(peak),
      growth_mib: mib(peak - base),
      after_rss_mib: mib(after),
      bodies,
      bodies_s: round(bodiesS),
      sockets_open: open,
      sockets_refused: refused,
      socket_closes: closes,
      readyz: { ...summary, failures: readyzFailures },
      goals: {
        rss_growth_under_100_mib: peak - base < 100 * 1024 * 1024,
        readyz_max_under_1_s: summary.max_ms < 1000 && readyzFailures === 0,
      },
    };
  } finally {
    for (const socket of sockets) {
      try {
        socket.close();
      } catch { /* closed */ }
    }
    await relay.stop();
    await Deno.remove(relay.dataDir, { recursive: true }).catch(() => {});
  }
}

/** The result as a few lines of text. */
export function abuseTable(r: AbuseResult): string {
  return [
    `${r.clients} × ${r.bodyMiB} MiB bodies + ${r.sockets} unauthenticated sockets (PGlite)` +
    (r.spread ? `, per-address cap lifted, one ${r.frameKiB} KiB frame each` : ", one address"),
    `  RSS ${r.base_rss_mib} → peak ${r.peak_rss_mib} MiB (growth ${r.growth_mib} MiB), ` +
    `${r.after_rss_mib} MiB after`,
    `  bodies answered in ${r.bodies_s} s: ${JSON.stringify(r.bodies)}`,
    `  sockets: ${r.sockets_open} open, ${r.sockets_refused} refused; closes ` +
    JSON.stringify(r.socket_closes),
    `  /readyz: p50 ${r.readyz.p50_ms} ms, p99 ${r.readyz.p99_ms} ms, max ${r.readyz.max_ms} ms, ` +
    `${r.readyz.failures} failures of ${r.readyz.count}`,
    `  goals: RSS growth < 100 MiB ${r.goals.rss_growth_under_100_mib ? "met" : "MISSED"}; ` +
    `/readyz max < 1 s ${r.goals.readyz_max_under_1_s ? "met" : "MISSED"}`,
  ].join("\n");
}

/**
 * @module
 * Drives the bare WebSocket server of `raw_ws.ts` (started here as its own process): echo
 * throughput, group broadcast through the same {@link LoadRun} as the relay, a push of N
 * message-shaped frames to one client, and the memory of N idle sockets.
 */

import { freePort } from "../tests/helpers/postgres.ts";
import type { LoadClient, LoadRun } from "./load.ts";
import { Latencies, type LatencySummary, pool, range, sleep } from "./stats.ts";
import { cpuSeconds, rssBytes } from "./system.ts";

const SERVER = new URL("./raw_ws.ts", import.meta.url).pathname;

/** A running bare WebSocket server. */
export type RawServer = { pid: number; url: string; stop(): Promise<void> };

/** Starts `raw_ws.ts` in its own process. */
export async function startRawServer(): Promise<RawServer> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER, String(port)],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      const response = await fetch(`${url}/healthz`);
      await response.body?.cancel();
      if (response.ok) break;
    } catch { /* not yet */ }
    await sleep(50);
  }
  return {
    pid: child.pid,
    url,
    stop: async () => {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

/** Opens `n` WebSockets to `urlOf(i)`, `concurrency` handshakes at a time. */
export function openSockets(
  n: number,
  urlOf: (i: number) => string,
  concurrency = 200,
): Promise<WebSocket[]> {
  return pool(range(n), concurrency, (i) =>
    new Promise<WebSocket>((resolve, reject) => {
      const socket = new WebSocket(urlOf(i));
      socket.onopen = () => resolve(socket);
      socket.onerror = () => reject(new Error(`WebSocket ${i} failed to open`));
    }));
}

/** Closes sockets and waits a moment for the closes to land. */
export async function closeSockets(sockets: WebSocket[]): Promise<void> {
  for (const socket of sockets) socket.close();
  await sleep(500);
}

/** Echo ceiling: every socket keeps `window` frames in flight for `seconds`. */
export async function echoCeiling(
  server: RawServer,
  connections: number,
  seconds: number,
  window = 4,
  chars = 88,
): Promise<{ connections: number; msg_s: number; rtt: LatencySummary; server_cpu_pct: number }> {
  const wsUrl = server.url.replace("http", "ws") + "/echo";
  const sockets = await openSockets(connections, () => wsUrl);
  const rtt = new Latencies();
  let count = 0;
  let running = true;
  const body = "m" + "A".repeat(chars - 1);
  for (const socket of sockets) {
    const times: number[] = [];
    socket.onmessage = () => {
      const now = performance.now();
      rtt.add(now - times.shift()!);
      count++;
      if (running) {
        times.push(performance.now());
        socket.send(body);
      }
    };
    for (let i = 0; i < window; i++) {
      times.push(performance.now());
      socket.send(body);
    }
  }
  const cpu0 = cpuSeconds(server.pid);
  const t0 = performance.now();
  const c0 = count;
  await sleep(seconds * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  const done = count - c0;
  const cpu = (cpuSeconds(server.pid) - cpu0) / elapsed * 100;
  running = false;
  await sleep(200);
  await closeSockets(sockets);
  return {
    connections,
    msg_s: Math.round(done / elapsed),
    rtt: rtt.summary(),
    server_cpu_pct: Math.round(cpu * 10) / 10,
  };
}

/** Raw group-broadcast clients for {@link LoadRun}: `groups` groups of `size` sockets. */
export async function broadcastClients(
  server: RawServer,
  groups: number,
  size: number,
  current: () => LoadRun | null,
): Promise<{ sockets: WebSocket[]; clients: LoadClient[] }> {
  const base = server.url.replace("http", "ws") + "/group?g=";
  const sockets = await openSockets(groups * size, (i) => base + Math.floor(i / size));
  for (const socket of sockets) {
    socket.onmessage = (event) => current()?.onReceive(event.data as string);
  }
  // Give the server's onopen handlers time to register every socket in its group.
  await sleep(300);
  const clients = sockets.map((socket) => ({
    send: (body: string) => {
      socket.send(body);
      return null;
    },
  }));
  return { sockets, clients };
}

/** Push ceiling: time for one client to receive `n` message-shaped frames. */
export async function pushCeiling(
  server: RawServer,
  n: number,
  chars = 88,
): Promise<{ messages: number; seconds: number; msg_s: number }> {
  const t0 = performance.now();
  const socket = new WebSocket(`${server.url.replace("http", "ws")}/push?n=${n}&chars=${chars}`);
  let count = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("push did not finish in 60 s")), 60_000);
    socket.onmessage = (event) => {
      // Parse like a client would.
      JSON.parse(event.data as string);
      if (++count === n) {
        clearTimeout(timer);
        resolve();
      }
    };
  });
  const seconds = (performance.now() - t0) / 1000;
  socket.close();
  return {
    messages: n,
    seconds: Math.round(seconds * 1000) / 1000,
    msg_s: Math.round(n / seconds),
  };
}

/** Memory of `n` idle sockets on the bare server. */
export async function idleCeiling(
  server: RawServer,
  n: number,
): Promise<{ connections: number; base_rss_mib: number; rss_mib: number; per_conn_kib: number }> {
  const wsUrl = server.url.replace("http", "ws") + "/echo";
  // Warm the paths once so the baseline already holds the code.
  await closeSockets(await openSockets(10, () => wsUrl));
  await sleep(1000);
  const base = rssBytes(server.pid);
  const sockets = await openSockets(n, () => wsUrl);
  await sleep(3000);
  const rss = rssBytes(server.pid);
  await closeSockets(sockets);
  return {
    connections: n,
    base_rss_mib: Math.round(base / 1048576 * 10) / 10,
    rss_mib: Math.round(rss / 1048576 * 10) / 10,
    per_conn_kib: Math.round((rss - base) / n / 1024 * 10) / 10,
  };
}

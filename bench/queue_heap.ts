/**
 * @module
 * Heap per queued send (issue 14, item 3: a bound that counts what a queued send really holds).
 * One relay on Postgres, its V8 heap read through its inspector. A session of another connection
 * holds a lock on `messages`, so no commit can finish; one WebSocket then sends `sends` frames
 * (`bodyChars` base64url characters each), the relay's `sealpost_commit_queue_sends` gauge shows
 * them all waiting, and the heap is read again after a full collection
 * (`HeapProfiler.collectGarbage`, then `Runtime.getHeapUsage`). The difference over the sends
 * waiting is what one queued send holds: the figure behind the commit queue's bound
 * (`SEALPOST_COMMIT_QUEUE_BYTES` counts a body plus `SEND_OVERHEAD_BYTES`, 2,400 bytes). The lock is then released and every
 * send must be answered `sent`. Memory only: nothing here is timed.
 */

import postgres from "postgres";
import { registerDevices } from "./fleet.ts";
import { freePort } from "../tests/helpers/postgres.ts";
import { startRelay } from "./relay_process.ts";
import { round, sleep } from "./stats.ts";
import { RawSocket } from "../tests/helpers/ws.ts";

/** What the scenario measured. */
export type QueueHeapResult = {
  sends: number;
  body_chars: number;
  /** `sealpost_commit_queue_sends` once every send had arrived (must equal `sends`). */
  queued: number;
  /** `sealpost_commit_queue_bytes` then: what the bound counted. */
  counted_bytes: number;
  heap_before_mib: number;
  heap_queued_mib: number;
  /** Heap growth per queued send, after a full collection. */
  heap_per_send_bytes: number;
  /** What the bound counts per send. */
  counted_per_send_bytes: number;
  /** Answered `sent` after the lock was released (must equal `sends`). */
  answered: number;
};

/** Runs the scenario against a fresh relay on `databaseUrl` (a fresh, empty database). */
export async function queueHeapScenario(
  databaseUrl: string,
  options: { sends: number; bodyChars: number },
): Promise<QueueHeapResult> {
  const inspectPort = freePort();
  const relay = await startRelay({ databaseUrl, inspectPort });
  const inspector = await Inspector.open(inspectPort);
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const { devices: [alice] } = await registerDevices(relay.url, 1);
    const group = await alice.api.createGroup({ members: [] });
    const socket = await RawSocket.authed(
      relay.url.replace(/^http/, "ws") + "/v1/ws",
      alice.api.token!,
    );
    // Warm the send path once, so its code and caches are not counted as queue.
    socket.send({ t: "send", ref: "warm", group: group.id, body: "AAAA" });
    await socket.next((f) => f.t === "sent", 10_000);
    const before = await inspector.heapUsed();
    const held = Promise.withResolvers<void>();
    const locked = Promise.withResolvers<void>();
    const holding = sql.begin(async (tx) => {
      await tx`lock table messages in exclusive mode`;
      locked.resolve();
      await held.promise;
    });
    await locked.promise;
    const body = "A".repeat(options.bodyChars);
    for (let i = 0; i < options.sends; i++) {
      socket.send({ t: "send", ref: i, group: group.id, client_id: `q${i}`, body });
    }
    let queued = 0;
    let counted = 0;
    const deadline = Date.now() + 60_000;
    // Until all are queued, or an answer shows one was not (refused).
    while (queued < options.sends && Date.now() < deadline && socket.frames.length === 0) {
      await sleep(200);
      const metrics = await relay.metrics();
      queued = metrics.get("sealpost_commit_queue_sends") ?? 0;
      counted = metrics.get("sealpost_commit_queue_bytes") ?? 0;
    }
    const after = await inspector.heapUsed();
    held.resolve();
    await holding;
    const answers = await socket.take(
      options.sends,
      (f) => f.t === "sent" || f.t === "error",
      120_000,
    );
    socket.close();
    return {
      sends: options.sends,
      body_chars: options.bodyChars,
      queued,
      counted_bytes: counted,
      heap_before_mib: round(before / 2 ** 20),
      heap_queued_mib: round(after / 2 ** 20),
      heap_per_send_bytes: Math.round((after - before) / Math.max(1, queued)),
      counted_per_send_bytes: Math.round(counted / Math.max(1, queued)),
      answered: answers.filter((f) => f.t === "sent").length,
    };
  } finally {
    inspector.close();
    await sql.end({ timeout: 5 });
    await relay.stop();
  }
}

/** One line for the console. */
export function queueHeapLine(r: QueueHeapResult): string {
  return `${r.queued}/${r.sends} sends queued behind a lock (${r.body_chars}-char bodies): ` +
    `heap ${r.heap_before_mib} → ${r.heap_queued_mib} MiB, ` +
    `${r.heap_per_send_bytes} B per queued send (the bound counts ${r.counted_per_send_bytes}); ` +
    `${r.answered} answered sent after the lock`;
}

/** The relay's V8 inspector (Chrome DevTools Protocol over a WebSocket). */
class Inspector {
  #next = 0;
  #waiting = new Map<number, (result: Record<string, unknown>) => void>();
  private constructor(private readonly ws: WebSocket) {
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data as string);
      if (typeof m.id === "number") this.#waiting.get(m.id)?.(m.result ?? {});
    };
  }

  static async open(port: number): Promise<Inspector> {
    const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    const ws = new WebSocket(list[0].webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error("the relay's inspector refused the connection"));
    });
    return new Inspector(ws);
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${method}: no answer in 30 s`)), 30_000);
      this.#waiting.set(id, (result) => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        resolve(result);
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Bytes in use on the V8 heap after two full collections. */
  async heapUsed(): Promise<number> {
    await this.call("HeapProfiler.collectGarbage");
    await this.call("HeapProfiler.collectGarbage");
    return Number((await this.call("Runtime.getHeapUsage")).usedSize);
  }

  close(): void {
    this.ws.close();
  }
}

/**
 * @module
 * A TCP proxy on loopback that delays every byte by a fixed time in each direction, to put the
 * relay "far from the primary" (e.g. 40 ms each way ≈ ams↔iad) without touching the network.
 * Each direction is a queue of chunks stamped with their arrival time; a pump writes each chunk
 * once its time has come, so order is kept and throughput is not limited by the delay. Only for
 * benchmarks: it listens on 127.0.0.1 and forwards to one loopback target.
 */

/** A running proxy. */
export interface DelayProxy {
  readonly port: number;
  /** Stops listening and closes every proxied connection. */
  close(): Promise<void>;
}

/** Largest bytes one direction may hold while waiting out its delay (bounds memory). */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/**
 * Listens on `127.0.0.1:<random port>` and forwards to `127.0.0.1:targetPort`, delaying each
 * direction by `delayMs`.
 *
 * @example
 * ```ts
 * const proxy = startDelayProxy(5432, 40);
 * // connect to 127.0.0.1:${proxy.port} instead of 5432
 * await proxy.close();
 * ```
 */
export function startDelayProxy(targetPort: number, delayMs: number): DelayProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const accepting = (async () => {
    for await (const client of listener) {
      let server: Deno.Conn;
      try {
        server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      } catch {
        client.close();
        continue;
      }
      open.add(client);
      open.add(server);
      const done = () => {
        for (const conn of [client, server]) {
          open.delete(conn);
          try {
            conn.close();
          } catch { /* already closed */ }
        }
      };
      Promise.all([pipe(client, server, delayMs), pipe(server, client, delayMs)]).finally(done);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close: async () => {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      open.clear();
      await accepting;
    },
  };
}

/** Copies `from` to `to`, each chunk `delayMs` after it arrived. */
async function pipe(from: Deno.Conn, to: Deno.Conn, delayMs: number): Promise<void> {
  const queue: { at: number; bytes: Uint8Array }[] = [];
  let queued = 0;
  let ended = false;
  const signal: { wake: (() => void) | null } = { wake: null };
  const writer = (async () => {
    for (;;) {
      const next = queue.shift();
      if (!next) {
        if (ended) return;
        await new Promise<void>((resolve) => signal.wake = resolve);
        continue;
      }
      const wait = next.at + delayMs - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      queued -= next.bytes.length;
      for (let off = 0; off < next.bytes.length;) off += await to.write(next.bytes.subarray(off));
    }
  })();
  try {
    for (;;) {
      const buffer = new Uint8Array(64 * 1024);
      const n = await from.read(buffer);
      if (n === null) break;
      if (queued + n > MAX_QUEUED_BYTES) throw new Error("delay proxy: too much in flight");
      queued += n;
      queue.push({ at: performance.now(), bytes: buffer.subarray(0, n) });
      signal.wake?.();
      signal.wake = null;
    }
  } catch { /* the connection closed */ }
  ended = true;
  signal.wake?.();
  await writer.catch(() => {});
}

/**
 * @module
 * A loopback TCP proxy whose connections can be frozen: bytes stop flowing both ways while the
 * sockets stay open — what a client sees when a NAT drops its mapping or a laptop sleeps, and the
 * network never reports a close. New connections after a freeze flow normally.
 */

/** A running proxy to `target`. */
export type TcpProxy = {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Stops forwarding on every connection open now (they stay open). */
  freezeAll(): void;
  close(): Promise<void>;
};

/** Starts a proxy on 127.0.0.1 (random port) to `127.0.0.1:targetPort`. */
export function startTcpProxy(targetPort: number): TcpProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pairs: { frozen: boolean; conns: Deno.Conn[] }[] = [];
  let accepted = 0;
  const pump = async (from: Deno.Conn, to: Deno.Conn, pair: { frozen: boolean }) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        if (pair.frozen) continue; // swallowed: the peer hears nothing
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch { /* closed */ }
    if (!pair.frozen) await to.closeWrite().catch(() => {}); // passes the close on
  };
  const loop = (async () => {
    for await (const client of listener) {
      accepted++;
      let server: Deno.Conn;
      try {
        server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      } catch {
        client.close();
        continue;
      }
      const pair = { frozen: false, conns: [client, server] };
      pairs.push(pair);
      void pump(client, server, pair);
      void pump(server, client, pair);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get accepted() {
      return accepted;
    },
    freezeAll() {
      for (const pair of pairs) pair.frozen = true;
    },
    async close() {
      listener.close();
      for (const pair of pairs) {
        for (const conn of pair.conns) {
          try {
            conn.close();
          } catch { /* closed */ }
        }
      }
      await loop;
    },
  };
}

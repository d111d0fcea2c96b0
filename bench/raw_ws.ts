/**
 * @module
 * The raw ceiling: a bare Deno WebSocket server with no protocol, no database and no
 * validation, run as its own process beside the relay so its memory and CPU are measured the
 * same way. Paths:
 *
 * - `/echo` — every text frame goes back to its sender;
 * - `/group?g=<n>` — every text frame goes to every socket of group `n`, the sender included
 *   (the relay's fan-out without the relay);
 * - `/push?n=<count>&chars=<body chars>` — sends `count` message-shaped frames as fast as the
 *   socket drains (the replay without the database).
 *
 * @example
 * ```sh
 * deno run -A bench/raw_ws.ts 9100
 * ```
 */

/** The frame shape the relay would send for a message (same size, same JSON). */
function pushFrame(seq: number, chars: number): string {
  return JSON.stringify({
    t: "msg",
    group: "AAAAAAAAAAAAAAAAAAAAAA",
    seq,
    from: {
      account: "A".repeat(43),
      device: "A".repeat(43),
    },
    created_at: Date.now(),
    expires_at: Date.now() + 86_400_000,
    body: "m" + "A".repeat(chars - 1),
  });
}

function serve(port: number): Deno.HttpServer {
  const groups = new Map<string, Set<WebSocket>>();
  return Deno.serve({ port, hostname: "127.0.0.1", onListen: () => {} }, (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return new Response("ok");
    if (request.headers.get("upgrade") !== "websocket") {
      return new Response("not found", { status: 404 });
    }
    const { socket, response } = Deno.upgradeWebSocket(request);
    if (url.pathname === "/echo") {
      socket.onmessage = (event) => socket.send(event.data);
    } else if (url.pathname === "/group") {
      const key = url.searchParams.get("g") ?? "0";
      let members = groups.get(key);
      if (!members) groups.set(key, members = new Set());
      const set = members;
      socket.onopen = () => set.add(socket);
      socket.onclose = () => set.delete(socket);
      socket.onmessage = (event) => {
        for (const peer of set) peer.send(event.data);
      };
    } else if (url.pathname === "/push") {
      const n = Number(url.searchParams.get("n") ?? "1000");
      const chars = Number(url.searchParams.get("chars") ?? "88");
      socket.onopen = async () => {
        for (let seq = 1; seq <= n; seq++) {
          // Pace like the relay's replay: wait while the client has 4 MiB unread.
          while (socket.bufferedAmount > 4 * 1024 * 1024 && socket.readyState === 1) {
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
          if (socket.readyState !== 1) return;
          socket.send(pushFrame(seq, chars));
        }
      };
    }
    return response;
  });
}

if (import.meta.main) {
  serve(Number(Deno.args[0] ?? "9100"));
}

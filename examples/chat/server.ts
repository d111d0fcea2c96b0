/**
 * @module
 * `deno task example:chat`: builds the chat page for the browser (`deno bundle --platform
 * browser`), serves it, and forwards every other path (`/v1/...` over HTTP and the WebSocket,
 * `/admin`) to a Sealpost relay, so the page talks to the relay from its own origin. With `--relay <url>` it
 * uses a running relay; otherwise it starts one (`main.ts serve`, data in `data/chat-example`)
 * whose public URL is this server, so signed blob URLs come back through it too.
 *
 * ```sh
 * deno task example:chat               # http://localhost:8090, with its own relay
 * deno task example:chat --port 9000 --relay http://localhost:8080
 * ```
 */

import css from "./style.css" with { type: "text" };
import html from "./index.html" with { type: "text" };

/** A running chat server. */
export type ChatServer = { url: string; close(): Promise<void> };

/** Options of {@link startChatServer}. */
export type ChatServerOptions = {
  /** The relay to forward `/v1` to. */
  relayUrl: string;
  port?: number;
  hostname?: string;
  /** The bundled page script; built when not given. */
  bundle?: string;
};

/** Bundles `app.ts` for the browser and returns the script. */
export async function buildBundle(): Promise<string> {
  const out = await Deno.makeTempFile({ prefix: "sealpost-chat-", suffix: ".js" });
  try {
    const app = new URL("./app.ts", import.meta.url).pathname;
    const config = new URL("../../deno.json", import.meta.url).pathname;
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "browser", "--config", config, "--minify", "-o", out, app],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!result.success) {
      throw new Error(`Cannot bundle the chat page: ${new TextDecoder().decode(result.stderr)}`);
    }
    return await Deno.readTextFile(out);
  } finally {
    await Deno.remove(out).catch(() => {});
  }
}

/** Serves the page and forwards everything else to the relay. */
export async function startChatServer(options: ChatServerOptions): Promise<ChatServer> {
  const bundle = options.bundle ?? await buildBundle();
  const relay = new URL(options.relayUrl);
  const server = Deno.serve(
    { port: options.port ?? 8090, hostname: options.hostname ?? "127.0.0.1", onListen: () => {} },
    (request) => {
      const { pathname } = new URL(request.url);
      if (pathname === "/" || pathname === "/index.html") return asset(html, "text/html");
      if (pathname === "/app.js") return asset(bundle, "text/javascript");
      if (pathname === "/style.css") return asset(css, "text/css");
      // Everything else is the relay's: the API, its WebSocket, health, the admin dashboard.
      return forward(request, relay);
    },
  );
  const { port } = server.addr as Deno.NetAddr;
  return {
    url: `http://${options.hostname ?? "127.0.0.1"}:${port}`,
    close: () => server.shutdown(),
  };
}

function asset(body: string, type: string): Response {
  return new Response(body, {
    headers: { "content-type": `${type}; charset=utf-8`, "cache-control": "no-store" },
  });
}

/** Forwards one request to the relay, a WebSocket upgrade included. */
async function forward(request: Request, relay: URL): Promise<Response> {
  const url = new URL(request.url);
  const target = new URL(url.pathname + url.search, relay);
  if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
    return forwardSocket(request, target);
  }
  const headers = new Headers(request.headers);
  headers.delete("host");
  const response = await fetch(target, {
    method: request.method,
    headers,
    body: request.body,
    redirect: "manual",
  });
  const out = new Headers(response.headers);
  out.delete("content-encoding");
  out.delete("content-length");
  // The relay's own signed blob URLs (whatever its public URL) come back through this origin.
  const location = out.get("location");
  if (location && /^https?:\/\//.test(location)) {
    const target = new URL(location);
    if (target.pathname.startsWith("/v1/")) out.set("location", target.pathname + target.search);
  }
  return new Response(response.body, { status: response.status, headers: out });
}

/** A close code a WebSocket may be closed with by an application (1000, 3000–4999). */
function closable(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

/** Joins the browser's WebSocket to one of the relay, frame for frame, close for close. */
function forwardSocket(request: Request, target: URL): Response {
  const { socket, response } = Deno.upgradeWebSocket(request);
  const upstream = new WebSocket(target.href.replace(/^http/, "ws"));
  const early: string[] = [];
  socket.onmessage = (event) => {
    if (upstream.readyState === WebSocket.OPEN) upstream.send(event.data);
    else early.push(event.data);
  };
  upstream.onopen = () => {
    for (const frame of early.splice(0)) upstream.send(frame);
  };
  upstream.onmessage = (event) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
  };
  const closeBoth = (code: number, reason: string) => {
    for (const ws of [socket, upstream]) {
      if (ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING) continue;
      try {
        ws.close(closable(code), reason);
      } catch { /* already gone */ }
    }
  };
  upstream.onclose = (event) => closeBoth(event.code, event.reason);
  socket.onclose = (event) => closeBoth(event.code, event.reason);
  upstream.onerror = () => closeBoth(1000, "relay unreachable");
  return response;
}

/** Starts a relay of its own for the example and waits until it is ready. */
async function startRelay(port: number, publicUrl: string): Promise<{ url: string; stop(): void }> {
  const relayPort = port + 1;
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "serve"],
    env: {
      PORT: String(relayPort),
      SEALPOST_HOST: "127.0.0.1",
      SEALPOST_DATA_DIR: new URL("../../data/chat-example", import.meta.url).pathname,
      SEALPOST_PUBLIC_URL: publicUrl,
      SEALPOST_LOG_LEVEL: "warn",
    },
    stdin: "null",
  }).spawn();
  const url = `http://127.0.0.1:${relayPort}`;
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return { url, stop: () => child.kill() };
    } catch { /* not yet */ }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill();
  throw new Error(`The example's relay did not become ready on ${url}`);
}

if (import.meta.main) {
  const args = Deno.args;
  const flag = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const port = Number(flag("port") ?? 8090);
  const publicUrl = `http://localhost:${port}`;
  let relayUrl = flag("relay");
  let stopRelay = () => {};
  if (!relayUrl) {
    console.log("Starting a relay for the example (data in data/chat-example)…");
    const relay = await startRelay(port, publicUrl);
    relayUrl = relay.url;
    stopRelay = relay.stop;
  }
  console.log("Bundling the page…");
  const server = await startChatServer({ relayUrl, port, hostname: "0.0.0.0" });
  console.log(`Sealpost chat on ${publicUrl} (relay ${relayUrl}). Open it in two browsers.`);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      stopRelay();
      server.close().finally(() => Deno.exit(0));
    });
  }
}

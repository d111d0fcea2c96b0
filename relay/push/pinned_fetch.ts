/**
 * @module
 * Fetching a push endpoint at the address the SSRF guard checked, not at whatever its name
 * resolves to a moment later (DNS rebinding: a name that answers a public address to the check
 * and `127.0.0.1` to the fetch). `fetch` resolves names itself, so the connection is pinned with
 * a per-request `Deno.createHttpClient`:
 *
 * - `http:` — the client's `tcp` transport connects every request to the pinned address; the
 *   request keeps its URL, so `Host` names the endpoint.
 * - `https:` — Deno 2.9's `tcp` transport does not speak TLS over the socket it is given (tried:
 *   the server sees a plaintext request), and `fetch` has no resolve override. So the client is
 *   given a proxy instead: a tiny `CONNECT` tunnel on loopback inside the relay, which ignores
 *   the name in `CONNECT host:port` and connects to the pinned address of the request (found by
 *   a one-time token the client sends as its proxy user name). TLS runs end to end through the
 *   tunnel, with SNI and certificate checks for the endpoint's name.
 *
 * The tunnel serves only pins it handed out (anything else gets `403` and is closed), reads at
 * most {@link MAX_HEAD_BYTES} of a `CONNECT` head, and listens on loopback only.
 */

import { randomId } from "../base/encoding.ts";

/** The most of a `CONNECT` request head the tunnel reads. */
const MAX_HEAD_BYTES = 8 * 1024;

type Pin = { hostname: string; port: number };

/**
 * Pinned fetches; one per push service (it owns the loopback tunnel, closed by {@link close}).
 *
 * @example
 * ```ts
 * const pinned = new PinnedFetcher();
 * const status = await pinned.fetch(endpoint, { method: "POST" }, "93.184.216.34", (r) => r.status);
 * ```
 */
export class PinnedFetcher {
  #listener: Deno.Listener | null = null;
  readonly #pins = new Map<string, Pin>();

  constructor(private readonly options: { caCerts?: string[] } = {}) {}

  /**
   * Fetches `url` connecting to `address` (an IP the guard checked), runs `read` on the
   * response while the connection is open, then closes it.
   */
  async fetch<T>(
    url: string,
    init: RequestInit,
    address: string,
    read: (response: Response) => T | Promise<T>,
  ): Promise<T> {
    const target = new URL(url);
    const port = Number(target.port || (target.protocol === "https:" ? 443 : 80));
    const hostname = address.replace(/^\[|\]$/g, "");
    let token: string | undefined;
    let client: Deno.HttpClient;
    if (target.protocol === "http:") {
      client = Deno.createHttpClient({ proxy: { transport: "tcp", hostname, port } });
    } else {
      token = randomId(18);
      this.#pins.set(token, { hostname, port });
      client = Deno.createHttpClient({
        caCerts: this.options.caCerts,
        proxy: {
          url: `http://127.0.0.1:${this.#tunnelPort()}`,
          basicAuth: { username: token, password: "pinned" },
        },
      });
    }
    try {
      return await read(await fetch(url, { ...init, client }));
    } finally {
      if (token) this.#pins.delete(token);
      client.close();
    }
  }

  /** Stops the tunnel. */
  close(): void {
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
    this.#listener = null;
  }

  #tunnelPort(): number {
    if (!this.#listener) {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      this.#listener = listener;
      (async () => {
        for await (const conn of listener) {
          this.#tunnel(conn).catch(() => {
            try {
              conn.close();
            } catch { /* closed */ }
          });
        }
      })().catch(() => {});
    }
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  async #tunnel(conn: Deno.Conn): Promise<void> {
    const { head, rest } = await readHead(conn);
    const [requestLine = "", ...lines] = head.split("\r\n");
    const connect = /^CONNECT \S+:(\d+) HTTP\/1\.[01]$/.exec(requestLine);
    const auth = lines.find((line) => /^proxy-authorization:/i.test(line)) ?? "";
    const basic = /basic\s+(\S+)/i.exec(auth)?.[1];
    let user = "";
    try {
      user = basic ? atob(basic).split(":")[0] : "";
    } catch { /* not base64 */ }
    const pin = this.#pins.get(user);
    if (!connect || !pin || Number(connect[1]) !== pin.port) {
      await conn.write(new TextEncoder().encode("HTTP/1.1 403 Forbidden\r\n\r\n")).catch(() => {});
      conn.close();
      return;
    }
    const upstream = await Deno.connect({ hostname: pin.hostname, port: pin.port });
    await conn.write(new TextEncoder().encode("HTTP/1.1 200 Connection Established\r\n\r\n"));
    if (rest.length > 0) await upstream.write(rest);
    await Promise.allSettled([
      conn.readable.pipeTo(upstream.writable),
      upstream.readable.pipeTo(conn.writable),
    ]);
  }
}

/** Reads a request head (up to the blank line, at most MAX_HEAD_BYTES) and any bytes after it. */
async function readHead(conn: Deno.Conn): Promise<{ head: string; rest: Uint8Array }> {
  const buffer = new Uint8Array(MAX_HEAD_BYTES);
  let size = 0;
  while (size < buffer.length) {
    const n = await conn.read(buffer.subarray(size));
    if (n === null) break;
    size += n;
    const text = new TextDecoder().decode(buffer.subarray(0, size));
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const headBytes = new TextEncoder().encode(text.slice(0, end + 4)).length;
      return { head: text.slice(0, end), rest: buffer.slice(headBytes, size) };
    }
  }
  return { head: "", rest: new Uint8Array() };
}

/**
 * @module
 * The SSRF guard for push endpoints. A Web Push or UnifiedPush endpoint is a URL the client
 * chose, and the relay POSTs to it: without a guard a client could make the relay reach
 * services on its own network (a database admin port, a cloud metadata service). An endpoint
 * whose host is, or resolves to, a loopback, private, link-local, CGNAT, multicast or reserved
 * address is refused unless the operator allows it (`SEALPOST_UNIFIEDPUSH_ALLOW_PRIVATE`, for a
 * distributor on the home network). Literal IPs are checked as they are; names are resolved
 * (A and AAAA) with `Deno.resolveDns` and every address must be public. The check runs when a
 * target is registered and again before each send (DNS can change); redirects are not followed.
 */

import { parseIp, parseIpv4 } from "../base/ip.ts";

/** Resolves a host name to its addresses (A and AAAA). */
export type Resolver = (host: string) => Promise<string[]>;

/** The default resolver: `Deno.resolveDns` for A and AAAA records. */
export const resolveWithDns: Resolver = async (host) => {
  const [v4, v6] = await Promise.all([
    Deno.resolveDns(host, "A").catch(() => [] as string[]),
    Deno.resolveDns(host, "AAAA").catch(() => [] as string[]),
  ]);
  return [...v4, ...v6];
};

function privateIpv4([a, b, c]: Iterable<number>): boolean {
  return a === 0 || a === 10 || a === 127 || a >= 224 || // this network, private, loopback, multicast+reserved
    (a === 100 && b >= 64 && b <= 127) || // CGNAT
    (a === 169 && b === 254) || // link-local (cloud metadata)
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0 && (c === 0 || c === 2)) || // IETF protocol assignments, TEST-NET-1
    (a === 198 && (b === 18 || b === 19)) || // benchmarking
    (a === 198 && b === 51 && c === 100) || (a === 203 && b === 0 && c === 113); // TEST-NETs
}

/**
 * True when `ip` (IPv4 or IPv6 text) is not a public unicast address: loopback, private,
 * link-local, unique-local, CGNAT, multicast, unspecified, documentation or reserved. IPv6
 * forms that carry an IPv4 address are judged by it: IPv4-mapped (`::ffff:a.b.c.d`),
 * IPv4-translated (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`); the
 * deprecated IPv4-compatible form (`::a.b.c.d`), local-use NAT64 (`64:ff9b:1::/48`) and the IETF
 * block with Teredo (`2001::/23`, whose client address is obfuscated) are refused outright.
 * Unparseable text counts as private (refused).
 *
 * @example
 * ```ts
 * isPrivateAddress("10.1.2.3"); // true
 * isPrivateAddress("::127.0.0.1"); // true
 * isPrivateAddress("93.184.216.34"); // false
 * ```
 */
export function isPrivateAddress(ip: string): boolean {
  const bytes = parseIp(ip);
  if (!bytes) return true;
  if (bytes.length === 4) return privateIpv4(bytes); // also IPv4-mapped IPv6
  const g = Array.from({ length: 8 }, (_, i) => (bytes[2 * i] << 8) | bytes[2 * i + 1]);
  const tail = bytes.subarray(12, 16);
  if (g.slice(0, 6).every((x) => x === 0)) return true; // ::, ::1, IPv4-compatible ::a.b.c.d
  if (g.slice(0, 4).every((x) => x === 0) && g[4] === 0xffff && g[5] === 0) {
    return privateIpv4(tail); // IPv4-translated
  }
  if (g[0] === 0x64 && g[1] === 0xff9b) {
    if (g[2] === 1) return true; // local-use NAT64 (RFC 8215)
    return privateIpv4(tail); // NAT64
  }
  if (g[0] === 0x2002) return privateIpv4(bytes.subarray(2, 6)); // 6to4
  if (g[0] === 0x2001 && g[1] < 0x0200) return true; // IETF assignments: Teredo, ORCHID, benchmarking
  if ((g[0] & 0xfe00) === 0xfc00) return true; // unique local
  if ((g[0] & 0xffc0) === 0xfe80 || (g[0] & 0xffc0) === 0xfec0) return true; // link/site-local
  if ((g[0] & 0xff00) === 0xff00) return true; // multicast
  if (g[0] === 0x2001 && g[1] === 0x0db8) return true; // documentation
  if (g[0] === 0x3fff && g[1] < 0x1000) return true; // documentation (RFC 9637)
  if (g[0] === 0x0100 && g[1] === 0 && g[2] === 0 && g[3] === 0) return true; // discard
  return false;
}

/** Options of the guard. */
export type GuardOptions = {
  allowPrivate: boolean;
  resolve?: Resolver;
};

/** A guard's answer: why not, or the address that was checked (null when nothing is checked). */
export type Verdict = { refusal: string } | { refusal: null; address: string | null };

/**
 * Checks endpoints. Verdicts are not cached: a cached "public" would let a name re-pointed
 * inward pass. A send then connects to the very address that was checked ({@link check} returns
 * it; `pinned_fetch.ts` connects there), so a name that resolves differently a moment later (DNS
 * rebinding) cannot redirect the request inward.
 */
export class AddressGuard {
  readonly #resolve: Resolver;

  constructor(private readonly options: GuardOptions) {
    this.#resolve = options.resolve ?? resolveWithDns;
  }

  get allowPrivate(): boolean {
    return this.options.allowPrivate;
  }

  /**
   * Returns why `endpoint` must not be contacted, or null when it may be.
   *
   * @example
   * ```ts
   * await guard.refusal("https://127.0.0.1/push"); // "its host 127.0.0.1 is a private…"
   * ```
   */
  async refusal(endpoint: string): Promise<string | null> {
    return (await this.check(endpoint)).refusal;
  }

  /**
   * Checks `endpoint` and returns the refusal, or the checked address to connect to (null when
   * private addresses are allowed: then nothing is checked or pinned).
   */
  async check(endpoint: string): Promise<Verdict> {
    if (this.options.allowPrivate) return { refusal: null, address: null };
    const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, "").toLowerCase();
    if (host === "localhost" || host.endsWith(".localhost")) {
      return { refusal: `its host ${host} is a loopback name` };
    }
    const literal = isIpLiteral(host);
    const addresses = literal ? [host] : await this.#resolve(host).catch(() => []);
    if (addresses.length === 0) return { refusal: `its host ${host} does not resolve` };
    // The resolved address itself is not named: the refusal reaches the client, and would tell
    // it what a name on the relay's network resolves to.
    if (addresses.some(isPrivateAddress)) {
      return {
        refusal: literal
          ? `its host ${host} is a private or loopback address`
          : `its host ${host} resolves to a private or loopback address`,
      };
    }
    return { refusal: null, address: addresses[0] };
  }
}

function isIpLiteral(host: string): boolean {
  return parseIpv4(host) !== null || host.includes(":");
}

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

import { parseIpv4, parseIpv6 } from "../base/ip.ts";

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

function privateIpv4([a, b, c]: number[]): boolean {
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
 * link-local, unique-local, CGNAT, multicast, unspecified, documentation or reserved — also
 * IPv4 addresses inside IPv4-mapped, NAT64 and 6to4 IPv6 addresses. Unparseable text counts as
 * private (refused).
 *
 * @example
 * ```ts
 * isPrivateAddress("10.1.2.3"); // true
 * isPrivateAddress("::ffff:127.0.0.1"); // true
 * isPrivateAddress("93.184.216.34"); // false
 * ```
 */
export function isPrivateAddress(ip: string): boolean {
  const v4 = parseIpv4(ip);
  if (v4) return privateIpv4(v4);
  const g = parseIpv6(ip);
  if (!g) return true;
  const embedded = () => [g[6] >> 8, g[6] & 255, g[7] >> 8, g[7] & 255];
  if (g.slice(0, 7).every((x) => x === 0)) return true; // :: and ::1 (and ::x, deprecated)
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return privateIpv4(embedded()); // mapped
  if (g[0] === 0x64 && g[1] === 0xff9b) return privateIpv4(embedded()); // NAT64
  if (g[0] === 0x2002) return privateIpv4([g[1] >> 8, g[1] & 255, g[2] >> 8, g[2] & 255]); // 6to4
  if ((g[0] & 0xfe00) === 0xfc00) return true; // unique local
  if ((g[0] & 0xffc0) === 0xfe80 || (g[0] & 0xffc0) === 0xfec0) return true; // link/site-local
  if ((g[0] & 0xff00) === 0xff00) return true; // multicast
  if (g[0] === 0x2001 && g[1] === 0x0db8) return true; // documentation
  if (g[0] === 0x0100 && g[1] === 0 && g[2] === 0 && g[3] === 0) return true; // discard
  return false;
}

/** Options of the guard. */
export type GuardOptions = {
  allowPrivate: boolean;
  resolve?: Resolver;
};

/**
 * Checks endpoints. Verdicts are not cached: a cached "public" would let a name re-pointed
 * inward pass. (A name can still change between this check and `fetch`'s own lookup; that
 * window is milliseconds, and operators who need more put the relay behind an egress proxy.)
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
    if (this.options.allowPrivate) return null;
    const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, "").toLowerCase();
    if (host === "localhost" || host.endsWith(".localhost")) {
      return `its host ${host} is a loopback name`;
    }
    const literal = isIpLiteral(host);
    const addresses = literal ? [host] : await this.#resolve(host).catch(() => []);
    if (addresses.length === 0) return `its host ${host} does not resolve`;
    const blocked = addresses.find(isPrivateAddress);
    if (blocked) {
      return literal
        ? `its host ${host} is a private or loopback address`
        : `its host ${host} resolves to the private or loopback address ${blocked}`;
    }
    return null;
  }
}

function isIpLiteral(host: string): boolean {
  return parseIpv4(host) !== null || host.includes(":");
}

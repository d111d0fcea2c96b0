/**
 * @module
 * The one place that decides a request's client address — the key of every per-address rate
 * limit, the address in the audit log and the admin's sessions. Without
 * `SEALPOST_TRUSTED_PROXIES` it is the socket's peer, whatever the headers say. With it, a
 * request whose peer lies in a trusted range is read through its forwarding headers: the
 * `X-Forwarded-For` chain (else the `for=` values of `Forwarded`, RFC 7239) is walked from the
 * right, skipping hops that are themselves trusted proxies, and the first untrusted hop is the
 * client — the left part of the chain is whatever the client wrote and is never believed. With
 * `fly` in the list, `Fly-Client-IP` (which Fly.io's edge proxy overwrites on every request) is
 * the client. Addresses are returned in canonical text (`::ffff:1.2.3.4` as `1.2.3.4`).
 */

import { cidrContains, type IpBytes, normalizeIp, parseIp } from "../base/ip.ts";
import type { TrustedProxies } from "../config/config.ts";

/** The answer when even the socket's address is unknown (a test calling `fetch` directly). */
export const UNKNOWN_ADDRESS = "unknown";

/** Forwarding chains longer than this are cut (from the left): the walk stays bounded. */
const MAX_HOPS = 32;

function trusted(proxies: TrustedProxies, ip: IpBytes): boolean {
  return proxies.ranges.some((range) => cidrContains(range, ip));
}

/** The `for=` values of a `Forwarded` header, left to right, brackets, quotes and ports removed. */
function forwardedFor(header: string): string[] {
  const out: string[] = [];
  for (const element of header.split(",")) {
    for (const pair of element.split(";")) {
      const [key, ...rest] = pair.split("=");
      if (key.trim().toLowerCase() !== "for") continue;
      let value = rest.join("=").trim().replace(/^"|"$/g, "");
      const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
      if (bracketed) value = bracketed[1];
      else if (/^[\d.]+:\d+$/.test(value)) value = value.replace(/:\d+$/, "");
      out.push(value);
    }
  }
  return out;
}

/**
 * The client address of a request that arrived from `peer` (the socket's address) with
 * `headers`, trusting the forwarding headers of `proxies` only.
 *
 * @example
 * ```ts
 * const proxies = parseTrustedProxies("127.0.0.1");
 * clientAddress("127.0.0.1", new Headers({ "x-forwarded-for": "6.6.6.6, 203.0.113.9" }), proxies);
 * // "203.0.113.9": the right-most hop that is not a trusted proxy
 * ```
 */
export function clientAddress(
  peer: string | undefined,
  headers: Headers,
  proxies: TrustedProxies | undefined,
): string {
  const peerText = peer === undefined ? UNKNOWN_ADDRESS : normalizeIp(peer) ?? peer;
  if (!proxies) return peerText;
  if (proxies.fly) {
    const fly = normalizeIp(headers.get("fly-client-ip")?.trim() ?? "");
    if (fly) return fly;
  }
  const peerBytes = peer === undefined ? null : parseIp(peer);
  if (!peerBytes || !trusted(proxies, peerBytes)) return peerText;
  const xff = headers.get("x-forwarded-for");
  const forwarded = headers.get("forwarded");
  const chain = xff !== null
    ? xff.split(",").map((s) => s.trim())
    : forwarded !== null
    ? forwardedFor(forwarded)
    : [];
  let client = peerText;
  for (const hop of chain.slice(-MAX_HOPS).reverse()) {
    const bytes = parseIp(hop);
    // Garbage (or `unknown`, `_hidden` in Forwarded): the hop that wrote it is the best answer.
    if (!bytes) return client;
    client = normalizeIp(hop) ?? hop;
    if (!trusted(proxies, bytes)) return client;
  }
  return client;
}

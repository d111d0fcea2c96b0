/**
 * @module
 * IP address text, parsed without the network: IPv4 dotted quads, IPv6 in every RFC 4291 form
 * (`::`, an embedded dotted IPv4 tail, a `%zone`, `[brackets]`), and CIDR ranges matched
 * against them. The SSRF guard (`push/address_guard.ts`) and the client-address logic
 * (`api/client_address.ts`) both read addresses through here, so they agree on what an address
 * is. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a dual-stack socket reports for an
 * IPv4 peer) is the IPv4 address for matching.
 */

/** A parsed address: 4 bytes (IPv4) or 16 bytes (IPv6). */
export type IpBytes = Uint8Array;

/** A CIDR range: a network address and a prefix length in bits. */
export type Cidr = { bytes: IpBytes; prefix: number };

/**
 * Parses dotted-quad IPv4 text into its four octets, or null.
 *
 * @example
 * ```ts
 * parseIpv4("10.1.2.3"); // [10, 1, 2, 3]
 * ```
 */
export function parseIpv4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  return out.every((n) => n >= 0 && n <= 255) ? out : null;
}

/**
 * Parses IPv6 text (optionally in brackets, with a zone) into its eight 16-bit groups, or null.
 * An embedded dotted IPv4 tail (`::ffff:1.2.3.4`, `::1.2.3.4`) is accepted.
 *
 * @example
 * ```ts
 * parseIpv6("::1"); // [0, 0, 0, 0, 0, 0, 0, 1]
 * ```
 */
export function parseIpv6(text: string): number[] | null {
  let host = text.replace(/^\[|\]$/g, "").split("%")[0];
  if (host.length > 64) return null;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(host);
  if (dotted) {
    const b = parseIpv4(dotted[1]);
    if (!b) return null;
    const hex = `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
    host = host.slice(0, -dotted[1].length) + hex;
  }
  const halves = host.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (s: string) => s === "" ? [] : s.split(":");
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  const known = head.length + tail.length;
  if (halves.length === 1 ? known !== 8 : known > 7) return null;
  const all = [...head, ...new Array(halves.length === 2 ? 8 - known : 0).fill("0"), ...tail];
  const groups = all.map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN));
  return groups.some(Number.isNaN) ? null : groups;
}

/**
 * Parses an address into bytes: 4 for IPv4 (also for an IPv4-mapped IPv6 address), 16 for IPv6;
 * null when `text` is not an address.
 */
export function parseIp(text: string): IpBytes | null {
  const v4 = parseIpv4(text);
  if (v4) return new Uint8Array(v4);
  const g = parseIpv6(text);
  if (!g) return null;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return new Uint8Array([g[6] >> 8, g[6] & 255, g[7] >> 8, g[7] & 255]);
  }
  const out = new Uint8Array(16);
  g.forEach((x, i) => {
    out[2 * i] = x >> 8;
    out[2 * i + 1] = x & 255;
  });
  return out;
}

/** The canonical text of an address (IPv4-mapped IPv6 shown as IPv4), or null. */
export function normalizeIp(text: string): string | null {
  const bytes = parseIp(text);
  if (!bytes) return null;
  if (bytes.length === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  // Compress the longest run of two or more zero groups (RFC 5952).
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

/**
 * Parses `10.0.0.0/8`, `fd00::/8` or a bare address (a range of one) into a {@link Cidr}.
 * Throws an `Error` saying what is accepted.
 */
export function parseCidr(text: string): Cidr {
  const [address, bits, extra] = text.trim().split("/");
  const bytes = parseIp(address ?? "");
  const max = bytes ? bytes.length * 8 : 0;
  // An IPv4-mapped range (::ffff:10.0.0.0/104) counts its prefix in IPv6 bits.
  const mapped = bytes?.length === 4 && address.includes(":");
  const prefix = bits === undefined
    ? max
    : /^\d{1,3}$/.test(bits)
    ? Number(bits) - (mapped ? 96 : 0)
    : NaN;
  if (!bytes || extra !== undefined || !(prefix >= 0 && prefix <= max)) {
    throw new Error("expected an address or CIDR range like 10.0.0.0/8 or fd00::/8");
  }
  return { bytes, prefix };
}

/** True when `ip` (bytes from {@link parseIp}) lies in `range`. */
export function cidrContains(range: Cidr, ip: IpBytes): boolean {
  if (range.bytes.length !== ip.length) return false;
  let bits = range.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((range.bytes[i] & mask) !== (ip[i] & mask)) return false;
  }
  return true;
}

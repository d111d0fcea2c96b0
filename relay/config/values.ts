/**
 * @module
 * How configuration values are written: durations (`500ms`, `90s`, `15m`, `24h`, `30d`), sizes
 * (`64KiB`, `100MiB`), rates (`100/min`, `off`), ports, URLs, lists. Each parser throws an
 * `Error` whose message says what is accepted; `config.ts` adds the variable and the value.
 */

import { type Cidr, parseCidr } from "../base/ip.ts";

/** A parsed rate limit: `count` events per `perMs`, or `null` when disabled (`off`). */
export type Rate = { count: number; perMs: number } | null;

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
};

/**
 * Parses a duration like `500ms`, `90s`, `15m`, `24h`, `30d` into milliseconds.
 *
 * @example
 * ```ts
 * parseDuration("15m"); // 900000
 * ```
 */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) throw new Error("expected a duration like 500ms, 90s, 15m, 24h or 30d");
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2]]);
}

/** Parses a size like `64KiB` or `100MiB` into bytes. */
export function parseSize(text: string): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match?.[2].toLowerCase() ?? "";
  if (!match || !(unit in SIZE_UNITS)) {
    throw new Error("expected a size like 65536, 64KiB or 100MiB");
  }
  return Number(match[1]) * SIZE_UNITS[unit];
}

/** A free-space reserve: an absolute size, or a share of the file system's size. */
export type DiskReserve = { bytes: number } | { percent: number };

/** Parses a disk reserve like `64MiB`, `2%` or `0` (off). */
export function parseDiskReserve(text: string): DiskReserve {
  const value = text.trim();
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(value);
  if (percent) {
    const share = Number(percent[1]);
    if (share >= 100) throw new Error("expected a share below 100%, like 2%");
    return { percent: share };
  }
  try {
    return { bytes: parseSize(value) };
  } catch {
    throw new Error("expected a size like 64MiB, a share like 2%, or 0 for none");
  }
}

/** Parses a rate like `100/min`, `30/s`, `1000/h`, or `off`. */
export function parseRate(text: string): Rate {
  const value = text.trim().toLowerCase();
  if (value === "off") return null;
  const match = /^(\d+)\/(s|sec|min|m|h|hour)$/.exec(value);
  if (!match || Number(match[1]) === 0) {
    throw new Error("expected a rate like 100/min, 5/s, 1000/h, or off");
  }
  const per = { s: 1000, sec: 1000, min: 60_000, m: 60_000, h: 3_600_000, hour: 3_600_000 };
  return { count: Number(match[1]), perMs: per[match[2] as keyof typeof per] };
}

export function parsePort(text: string): number {
  const port = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error("expected a port number from 0 to 65535");
  }
  return port;
}

export function oneOf<T extends string>(...values: T[]): (text: string) => T {
  return (text) => {
    if (!values.includes(text as T)) throw new Error(`expected one of ${values.join(", ")}`);
    return text as T;
  };
}

export function parseUrl(text: string): string {
  try {
    const url = new URL(text);
    return url.toString().replace(/\/$/, "");
  } catch {
    throw new Error("expected an absolute URL like https://relay.example.com");
  }
}

export function parseDatabaseUrl(text: string): string {
  if (!/^postgres(ql)?:\/\//.test(text)) {
    throw new Error("expected a URL like postgres://user:password@host:5432/dbname");
  }
  return text;
}

export function parseBool(text: string): boolean {
  const value = text.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(value)) return true;
  if (["false", "0", "no", "off"].includes(value)) return false;
  throw new Error("expected true or false");
}

export function parseContact(text: string): string {
  if (/^mailto:[^@\s]+@[^@\s]+$/.test(text.trim())) return text.trim();
  if (/^https?:\/\//.test(text.trim())) return parseUrl(text);
  throw new Error("expected a mailto: address or an https:// URL");
}

export function parseList(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

export function parseOptionalDuration(text: string): number | null {
  if (text.trim() === "off") return null;
  return parseDuration(text);
}

export function parseCount(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) {
    throw new Error("expected a whole number from 1");
  }
  return Number(text);
}

export function parseMaxTtl(text: string): number | null {
  if (text.trim() === "forever") return null;
  return parseDuration(text);
}

/** Any text, as given. */
export const text = (value: string) => value;

/** Which proxies' forwarding headers the relay believes (`SEALPOST_TRUSTED_PROXIES`). */
export type TrustedProxies = { readonly ranges: readonly Cidr[]; readonly fly: boolean };

/**
 * Parses a comma-separated list of CIDR ranges or addresses, and the word `fly` (trust
 * `Fly-Client-IP`, set by Fly.io's proxy).
 *
 * @example
 * ```ts
 * parseTrustedProxies("127.0.0.1/32, 10.0.0.0/8, fly");
 * ```
 */
export function parseTrustedProxies(text: string): TrustedProxies {
  const ranges: Cidr[] = [];
  let fly = false;
  for (const item of parseList(text)) {
    if (item.toLowerCase() === "fly") fly = true;
    else {
      try {
        ranges.push(parseCidr(item));
      } catch {
        throw new Error(
          `expected CIDR ranges like 10.0.0.0/8 or fd00::/8, or the word fly (bad item '${item}')`,
        );
      }
    }
  }
  if (ranges.length === 0 && !fly) throw new Error("expected at least one CIDR range or fly");
  return { ranges, fly };
}

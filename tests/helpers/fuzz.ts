/**
 * @module
 * Generators for the structure-aware fuzzers (`tests/e2e/fuzz_http_test.ts`,
 * `tests/e2e/fuzz_ws_test.ts`): a seeded random source, hostile values (wrong types, huge and
 * fractional numbers, deep and wide JSON, bad base64url, unicode edge cases, overlong strings),
 * mutations of a valid PROTOCOL.md shape, text-level damage to its serialization, and the check
 * that an answer is one of the documented error shapes. The seed is printed; a failing run is
 * replayed with `SEALPOST_FUZZ_SEED=<seed>`.
 */

import { type ErrorCode, ERRORS } from "../../relay/errors.ts";

/**
 * A small seeded PRNG (mulberry32): the same seed gives the same sequence of cases, so a failure
 * is reproducible. Not for anything but tests.
 */
export class Rng {
  #state: number;
  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  /** A child generator, so each worker draws its own reproducible sequence. */
  fork(): Rng {
    return new Rng(Math.floor(this.next() * 2 ** 32));
  }
}

/** The run's seed: `SEALPOST_FUZZ_SEED` when set, else a random one; printed either way. */
export function fuzzSeed(label: string): number {
  const given = Deno.env.get("SEALPOST_FUZZ_SEED");
  const seed = given ? Number(given) >>> 0 : crypto.getRandomValues(new Uint32Array(1))[0];
  console.log(`${label}: seed ${seed} (replay with SEALPOST_FUZZ_SEED=${seed})`);
  return seed;
}

/** JSON text inserted verbatim when serializing: deep or wide structures, odd number literals. */
export class Raw {
  constructor(readonly text: string) {}
}

/** Serializes a value that may contain {@link Raw} fragments. */
export function toJson(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${value.map(toJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${
      Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`).join(",")
    }}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** Strings that have broken parsers, databases and renderers. */
export const NASTY_STRINGS: readonly string[] = [
  "",
  " ",
  "\0",
  "a\0b",
  "\ud800", // lone high surrogate
  "\udfff", // lone low surrogate
  "x\ud83dy", // half an emoji
  "\u202e\u2066gnp.exe", // bidi overrides and isolates
  "\u200f\u200e\u061c",
  "\ufeff",
  "\uffff\ufffe",
  "\u2028\u2029",
  "\u0085\u001b[31m",
  "💥👩‍👩‍👧‍👦",
  "e\u0301\u0301\u0301\u0301",
  "null",
  "undefined",
  "NaN",
  "-0",
  "1e400",
  "9007199254740993",
  "../../../etc/passwd",
  "%00",
  "%ED%A0%80",
  "<script>alert(1)</script>",
  "'; DROP TABLE groups; --",
  "${jndi:ldap://x}",
  "__proto__",
  "constructor",
  "me",
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // 43 base64url chars: a well-formed key nobody has
  "AAAAAAAAAAAAAAAAAAAAAA", // 22 chars: a well-formed group id nobody has
];

/** Strings that are almost base64url: padding, the standard alphabet, whitespace, wrong lengths. */
export const BAD_BASE64URL: readonly string[] = [
  "abc=",
  "ab==",
  "a+b/",
  "a b",
  "a\nb",
  "é",
  "_",
  "A",
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // 42
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // 44
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_", // 43 with bits past the key
  "AAAAAAAAAAAAAAAAAAAAA", // 21
  "AAAAAAAAAAAAAAAAAAAAAAA", // 23
  "////////////////////////////////////////////=",
];

/** Numbers at and past every edge a validator or a database column has. */
export const NASTY_NUMBERS: readonly (number | Raw)[] = [
  -1,
  0,
  -0,
  0.5,
  -0.5,
  1.0000000001,
  1e-320,
  2 ** 31,
  2 ** 31 - 1,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  9e15,
  -9e15,
  2 ** 63,
  1e21,
  1e308,
  -1e308,
  Number.MAX_VALUE,
  new Raw("1e400"), // Infinity once parsed
  new Raw("-1e400"),
  new Raw("123456789012345678901234567890"),
  new Raw("1E2"),
  new Raw("0.0000000000000000000000001"),
];

/** `{"a":{"a":…}}` or `[[[…]]]` nested `depth` levels, built as text (no recursion). */
export function deepJson(depth: number, array = false): Raw {
  return array
    ? new Raw("[".repeat(depth) + "]".repeat(depth))
    : new Raw('{"a":'.repeat(depth) + "0" + "}".repeat(depth));
}

/** An object with `width` keys or an array with `width` elements. */
export function wideJson(width: number, array = false): Raw {
  if (array) return new Raw(`[${new Array(width).fill("0").join(",")}]`);
  const keys: string[] = [];
  for (let i = 0; i < width; i++) keys.push(`"k${i}":${i}`);
  return new Raw(`{${keys.join(",")}}`);
}

/** A hostile value of any kind. */
export function nastyValue(rng: Rng): unknown {
  switch (rng.int(12)) {
    case 0:
    case 1:
      return rng.pick(NASTY_STRINGS);
    case 2:
    case 3:
      return rng.pick(NASTY_NUMBERS);
    case 4:
      return rng.pick(BAD_BASE64URL);
    case 5:
      return rng.pick([true, false, null, [], {}, [null], { "": null }]);
    case 6:
      return deepJson(rng.pick([32, 256, 1_000, 5_000, 20_000, 100_000]), rng.chance(0.3));
    case 7:
      return wideJson(rng.pick([100, 100, 1_000, 1_000, 10_000, 50_000]), rng.chance(0.5));
    case 8:
      // Overlong strings: past every field's limit, some past the message limit.
      return rng.pick(["A", "é", "\u202e", "\0", "💥"]).repeat(rng.pick([101, 1_000, 70_000]));
    case 9:
      return [rng.pick(NASTY_STRINGS), rng.pick(NASTY_NUMBERS), rng.pick(BAD_BASE64URL)];
    case 10:
      return { [rng.pick(NASTY_STRINGS)]: rng.pick(NASTY_STRINGS) };
    default:
      return rng.pick(["x", 1, "AAAA", [], {}]);
  }
}

/** Mutates a valid shape: a field replaced, removed or retyped; a new field; nesting. */
export function mutate(rng: Rng, value: unknown, level = 0): unknown {
  if (level > 3 || value === null || typeof value !== "object" || value instanceof Raw) {
    return nastyValue(rng);
  }
  if (rng.chance(0.05)) return nastyValue(rng); // the whole body replaced
  if (Array.isArray(value)) {
    const copy = [...value];
    const op = rng.int(4);
    if (op === 0 || copy.length === 0) copy.push(nastyValue(rng));
    else if (op === 1) copy.splice(rng.int(copy.length), 1);
    else {
      const i = rng.int(copy.length);
      copy[i] = mutate(rng, copy[i], level + 1);
    }
    return copy;
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(copy);
  const mutations = 1 + (rng.chance(0.3) ? rng.int(3) : 0);
  for (let m = 0; m < mutations; m++) {
    const op = rng.int(6);
    if (op === 0 && keys.length > 0) delete copy[rng.pick(keys)];
    else if (op === 1) {
      // defineProperty, so even `__proto__` becomes an own field that reaches the wire.
      Object.defineProperty(
        copy,
        rng.pick(["t", "ref", "__proto__", "x", rng.pick(NASTY_STRINGS)]),
        {
          value: nastyValue(rng),
          enumerable: true,
          configurable: true,
          writable: true,
        },
      );
    } else if (keys.length > 0) {
      const key = rng.pick(keys);
      copy[key] = mutate(rng, copy[key], level + 1);
    }
  }
  return copy;
}

/** Damages a serialized body: truncated, flipped, control characters, trailing garbage. */
export function damageText(rng: Rng, text: string): string {
  switch (rng.int(8)) {
    case 0:
      return text.slice(0, rng.int(text.length));
    case 1: {
      const i = rng.int(text.length + 1);
      return text.slice(0, i) + rng.pick(["\0", "\x1b", '"', "}", "]", "\\", "\ud800", ","]) +
        text.slice(i);
    }
    case 2:
      return text + rng.pick(["}", " garbage", "\0", ",", "{}"]);
    case 3:
      return "\ufeff" + text;
    case 4:
      return text.replace(/"/g, "'");
    case 5:
      return text.replace(/:/, ":" + rng.pick(["NaN", "Infinity", "undefined", "-", "01"]));
    case 6:
      return ""; // an empty body
    default:
      return rng.pick(["null", "[]", "42", '"string"', "true", "{", "{{}}", '{"a":1,}']);
  }
}

/** Bytes that are not UTF-8 (lone continuation bytes, overlong encodings, surrogates). */
export function invalidUtf8(rng: Rng, prefix: string): Uint8Array<ArrayBuffer> {
  const bad = rng.pick([
    [0x80],
    [0xc0, 0xaf], // overlong "/"
    [0xed, 0xa0, 0x80], // an encoded surrogate
    [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0xff, 0xfe],
  ]);
  const head = new TextEncoder().encode(prefix);
  const out = new Uint8Array(head.length + bad.length + 2);
  out.set(head);
  out.set(bad, head.length);
  out.set([0x22, 0x7d], head.length + bad.length); // `"}`
  return out;
}

/** True for a code of the error table that a request can get (a row with an HTTP status). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERRORS, code) &&
    "status" in ERRORS[code as keyof typeof ERRORS];
}

/** An answer body that breaks the contract: not the documented error shape, or an `internal`. */
export function errorShapeProblem(status: number, body: unknown): string | null {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (!error || typeof error !== "object") return `status ${status} without an error body`;
  const code = error.code;
  if (!isErrorCode(code)) return `status ${status} with undocumented code ${JSON.stringify(code)}`;
  if (ERRORS[code].status !== status) return `code ${code} with status ${status}`;
  if (code === "internal") return "500 internal";
  if (typeof error.message !== "string" || error.message.length === 0) {
    return `code ${code} without a message`;
  }
  return null;
}

/** Short, printable description of a case for a failure message. */
export function describeCase(text: string | Uint8Array, max = 300): string {
  const s = typeof text === "string" ? text : `<${text.length} bytes>`;
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s);
}

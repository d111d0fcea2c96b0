/**
 * @module
 * Binary encodings of the wire: base64url without padding, hex, UTF-8, byte concatenation, and
 * SHA-256 hashing of secrets (tokens, invite codes) so they are stored only as hashes.
 */

type Base64Options = { alphabet: "base64url" | "base64"; lastChunkHandling?: "strict" | "loose" };
type Uint8ArrayWithBase64 = Uint8ArrayConstructor & {
  fromBase64(text: string, options: Base64Options): Uint8Array;
};
type BytesWithBase64 = Uint8Array & {
  toBase64(options: { alphabet: "base64url" | "base64"; omitPadding: boolean }): string;
};

const B64URL = /^[A-Za-z0-9_-]*$/;

/** Encodes bytes as standard base64 with padding (S3 checksums). */
export function toBase64(bytes: Uint8Array): string {
  return (bytes as BytesWithBase64).toBase64({ alphabet: "base64", omitPadding: false });
}

/** Decodes standard base64; `null` for text that is not base64. */
export function fromBase64(text: string): Uint8Array | null {
  try {
    return (Uint8Array as Uint8ArrayWithBase64).fromBase64(text, { alphabet: "base64" });
  } catch {
    return null;
  }
}

/** Encodes bytes as base64url without padding. */
export function toBase64Url(bytes: Uint8Array): string {
  return (bytes as BytesWithBase64).toBase64({ alphabet: "base64url", omitPadding: true });
}

/**
 * Decodes base64url without padding; returns `null` for text that is not canonical base64url.
 *
 * @example
 * ```ts
 * fromBase64Url("AQID"); // Uint8Array [1, 2, 3]
 * ```
 */
export function fromBase64Url(text: string): Uint8Array | null {
  if (!B64URL.test(text) || text.length % 4 === 1) return null;
  try {
    return (Uint8Array as Uint8ArrayWithBase64).fromBase64(text, {
      alphabet: "base64url",
      lastChunkHandling: "loose",
    });
  } catch {
    return null;
  }
}

/** Decoded byte length of a base64url string, without decoding it. */
export function base64UrlDecodedLength(text: string): number {
  return Math.floor((text.length * 3) / 4);
}

/** Bytes as lowercase hex (SigV4 digests, a group's `send_verifier`). */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The byte arrays one after another in a new array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** `n` cryptographically random bytes as base64url. */
export function randomId(n: number): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(n)));
}

const encoder = new TextEncoder();

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text);
}

/** SHA-256 of a string as base64url: how tokens and invite codes are stored. */
export async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", utf8(text));
  return toBase64Url(new Uint8Array(digest));
}

/**
 * Compares two secrets in time that depends on neither's content nor length: both are hashed
 * first, and the digests compared without an early exit.
 *
 * @example
 * ```ts
 * await sameSecret(header, `Bearer ${token}`); // true when equal
 * ```
 */
export async function sameSecret(a: string, b: string): Promise<boolean> {
  const digest = async (text: string) =>
    new Uint8Array(await crypto.subtle.digest("SHA-256", utf8(text)));
  const [x, y] = await Promise.all([digest(a), digest(b)]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

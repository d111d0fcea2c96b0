/**
 * @module
 * Padding that hides exact sizes (issue 16, "sizes that say less"). The relay stores ciphertext,
 * and a ciphertext's length is its plaintext's length plus a constant: a 3-byte "ok" and a
 * 2 KiB paragraph, or a 40 KiB photo and a 4 MiB video, are told apart by size alone. Padding the
 * plaintext **before** it is encrypted to a size bucket leaves the relay only the bucket.
 *
 * Buckets are Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
 * Communication with PURBs", PETS 2019): a length L is rounded up so that only its top
 * ⌊log2 ⌊log2 L⌋⌋ + 1 bits may be non-zero. The overhead is at most 12 % (less for large L), and a
 * size reveals O(log log L) bits instead of O(log L). Small bodies go to one 32-byte bucket.
 *
 * Encoding (ISO/IEC 7816-4 style, so the receiver needs no length field): `data ‖ 0x80 ‖ 0x00…`
 * up to the padded length. {@link unpad} drops the trailing zeros and the `0x80`. Padding must
 * happen inside the encryption: padding a ciphertext on the outside would let the relay strip
 * the zeros and read the exact length again.
 *
 * @example
 * ```ts
 * const padded = pad(new TextEncoder().encode("ok"));       // 32 bytes
 * const sealed = await encrypt(key, padded);                // the app's own AEAD
 * // … the receiver decrypts, then:
 * const text = new TextDecoder().decode(unpad(padded));     // "ok"
 * ```
 */

/** The smallest bucket: every body of up to 31 bytes pads to 32. */
export const MIN_PADDED_LENGTH = 32;

/**
 * The Padmé length for `length` bytes (≥ `length`, ≤ 1.12 × `length` beyond the minimum).
 *
 * @example
 * ```ts
 * padmeLength(1000); // 1024
 * padmeLength(9000); // 9216
 * ```
 */
export function padmeLength(length: number): number {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(
      `Cannot pad: length must be a whole number ≥ 0, got ${length}`,
    );
  }
  if (length <= MIN_PADDED_LENGTH) return MIN_PADDED_LENGTH;
  const e = Math.floor(Math.log2(length));
  const s = Math.floor(Math.log2(e)) + 1;
  const lastBits = e - s;
  const mask = 2 ** lastBits - 1; // may pass 2^31: no bitwise operators
  return Math.ceil(length / (mask + 1)) * (mask + 1);
}

/** The padded size of `length` bytes of data: its Padmé bucket, counting the `0x80` marker. */
export function paddedLength(length: number): number {
  return padmeLength(length + 1);
}

/**
 * Pads `data` to its bucket: `data ‖ 0x80 ‖ 0x00…` ({@link paddedLength} bytes).
 *
 * @example
 * ```ts
 * pad(new Uint8Array(100)).length; // 104
 * ```
 */
export function pad(data: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(paddedLength(data.length));
  out.set(data);
  out[data.length] = 0x80;
  return out;
}

/**
 * Removes the padding {@link pad} added; throws on bytes that are not padded data (no `0x80`
 * marker after the trailing zeros), so a sender that forgot to pad is noticed.
 *
 * @example
 * ```ts
 * unpad(pad(bytes)); // bytes
 * ```
 */
export function unpad(padded: Uint8Array): Uint8Array {
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (end < 0 || padded[end] !== 0x80) {
    throw new Error(
      "Cannot unpad: the data does not end in 0x80 followed by zeros",
    );
  }
  return padded.subarray(0, end);
}

/** How much a body of `length` bytes may grow before padding: room left under `limit`. */
export function maxUnpaddedLength(limit: number, overhead = 0): number {
  // The largest n with paddedLength(n) + overhead ≤ limit; paddedLength is monotonic.
  let lo = 0;
  let hi = Math.max(0, limit);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (paddedLength(mid) + overhead <= limit) lo = mid;
    else hi = mid - 1;
  }
  return paddedLength(lo) + overhead <= limit ? lo : -1;
}

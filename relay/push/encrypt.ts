/**
 * @module
 * RFC 8291 message encryption for Web Push, `aes128gcm` content coding (RFC 8188), on WebCrypto:
 * an ephemeral P-256 ECDH key agreement with the subscription's `p256dh` key, HKDF-SHA-256 mixed
 * with its `auth` secret, and AES-128-GCM over one record. Only the browser (or app) holding the
 * subscription's private key can read the payload; the push service sees ciphertext.
 *
 * No library does this on WebCrypto without Node's `crypto` module, and the whole scheme is a
 * few HKDF and AES-GCM calls, so it is written here and checked against the RFC's Appendix A.
 */

import { concatBytes, utf8 } from "../base/encoding.ts";

/** The record size written in the header; one record holds any wake-up. */
const RECORD_SIZE = 4096;

/** Options that make the output deterministic (tests with the RFC's vector). */
export type EncryptOptions = {
  /** 16 random bytes by default. */
  salt?: Uint8Array<ArrayBuffer>;
  /** The application server's ephemeral ECDH key pair; a new one by default. */
  keyPair?: CryptoKeyPair;
  /** Pads the plaintext to this many bytes so every wake-up has the same length. */
  padTo?: number;
};

/** HKDF-SHA-256 of `ikm` with `salt` and `info`, `length` bytes. */
export async function hkdf(
  salt: Uint8Array<ArrayBuffer>,
  ikm: Uint8Array<ArrayBuffer>,
  info: Uint8Array<ArrayBuffer>,
  length: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info },
    key,
    length * 8,
  );
  return new Uint8Array(bits);
}

/**
 * Imports an uncompressed P-256 public key (65 bytes) for ECDH; rejects when it is not one,
 * including a point that is not on the curve (Deno's raw import does not check that; the JWK
 * export does).
 */
export async function importP256(raw: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  if (raw.length !== 65 || raw[0] !== 4) {
    throw new Error("expected an uncompressed P-256 public key (65 bytes starting with 0x04)");
  }
  const key = await crypto.subtle.importKey(
    "raw",
    raw,
    { name: "ECDH", namedCurve: "P-256" },
    true,
    [],
  );
  try {
    await crypto.subtle.exportKey("jwk", key);
  } catch {
    throw new Error("expected a point on the P-256 curve");
  }
  return key;
}

/**
 * Derives the content-encryption key and nonce (RFC 8291 section 3.4 and RFC 8188 section 2.2)
 * from the ECDH secret; shared by encryption and the test receivers' decryption.
 */
export async function deriveKeys(
  ecdhSecret: Uint8Array<ArrayBuffer>,
  authSecret: Uint8Array<ArrayBuffer>,
  uaPublic: Uint8Array,
  asPublic: Uint8Array,
  salt: Uint8Array<ArrayBuffer>,
): Promise<{ cek: Uint8Array<ArrayBuffer>; nonce: Uint8Array<ArrayBuffer> }> {
  const keyInfo = concatBytes(utf8("WebPush: info\0"), uaPublic, asPublic);
  const ikm = await hkdf(authSecret, ecdhSecret, keyInfo, 32);
  const cek = await hkdf(salt, ikm, utf8("Content-Encoding: aes128gcm\0"), 16);
  const nonce = await hkdf(salt, ikm, utf8("Content-Encoding: nonce\0"), 12);
  return { cek, nonce };
}

/**
 * Encrypts `plaintext` for a subscription (`p256dh` as `uaPublic`, `auth` as `authSecret`),
 * returning the `aes128gcm` body: salt, record size, the sender's public key, one record.
 *
 * @example
 * ```ts
 * const body = await encryptAes128gcm(utf8('{"sealpost":"wake"}'), p256dh, auth);
 * await fetch(endpoint, { method: "POST", body, headers: { "content-encoding": "aes128gcm" } });
 * ```
 */
export async function encryptAes128gcm(
  plaintext: Uint8Array,
  uaPublic: Uint8Array<ArrayBuffer>,
  authSecret: Uint8Array<ArrayBuffer>,
  options: EncryptOptions = {},
): Promise<Uint8Array<ArrayBuffer>> {
  if (authSecret.length !== 16) throw new Error("expected a 16-byte auth secret");
  const uaKey = await importP256(uaPublic);
  const keyPair = options.keyPair ??
    await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
      "deriveBits",
    ]) as CryptoKeyPair;
  const asPublic = new Uint8Array(await crypto.subtle.exportKey("raw", keyPair.publicKey));
  const ecdhSecret = new Uint8Array(
    await crypto.subtle.deriveBits({ name: "ECDH", public: uaKey }, keyPair.privateKey, 256),
  );
  const salt = options.salt ?? crypto.getRandomValues(new Uint8Array(16));
  const { cek, nonce } = await deriveKeys(ecdhSecret, authSecret, uaPublic, asPublic, salt);

  // One record: the plaintext, the last-record delimiter 0x02, then zero padding.
  const padded = Math.max(plaintext.length + 1, options.padTo ?? 0);
  if (padded + 16 > RECORD_SIZE) throw new Error("the payload does not fit one record");
  const record = new Uint8Array(padded);
  record.set(plaintext);
  record[plaintext.length] = 2;
  const key = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["encrypt"]);
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce }, key, record),
  );

  const header = new Uint8Array(16 + 4 + 1 + asPublic.length);
  header.set(salt, 0);
  new DataView(header.buffer).setUint32(16, RECORD_SIZE);
  header[20] = asPublic.length;
  header.set(asPublic, 21);
  return concatBytes(header, sealed);
}

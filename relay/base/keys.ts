/**
 * @module
 * Ed25519 verification of device certificates and authentication proofs with `crypto.subtle`.
 * An account id and a device id are raw 32-byte Ed25519 public keys in base64url.
 */

import { fromBase64Url, utf8 } from "./encoding.ts";

/** The text an account root key signs to certify a device. */
export function certText(device: string): string {
  return `sealpost:device:v1:${device}`;
}

/** The text a device key signs to prove itself for a nonce. */
export function authText(nonce: string): string {
  return `sealpost:auth:v1:${nonce}`;
}

/** True when `id` is a well-formed public key id (43 base64url chars, 32 bytes). */
export function isKeyId(id: string): boolean {
  return id.length === 43 && fromBase64Url(id)?.length === 32;
}

const keyCache = new Map<string, CryptoKey>();

async function importKey(id: string): Promise<CryptoKey | null> {
  const cached = keyCache.get(id);
  if (cached) return cached;
  const raw = fromBase64Url(id);
  if (!raw || raw.length !== 32) return null;
  try {
    const key = await crypto.subtle.importKey(
      "raw",
      raw as Uint8Array<ArrayBuffer>,
      "Ed25519",
      false,
      ["verify"],
    );
    if (keyCache.size > 10_000) keyCache.clear();
    keyCache.set(id, key);
    return key;
  } catch {
    return null;
  }
}

/**
 * Verifies an Ed25519 signature (base64url) by public key `id` over the UTF-8 `message`.
 * Returns false for any malformed input rather than throwing.
 */
export async function verify(id: string, signature: string, message: string): Promise<boolean> {
  const key = await importKey(id);
  const sig = fromBase64Url(signature);
  if (!key || !sig || sig.length !== 64) return false;
  try {
    return await crypto.subtle.verify(
      "Ed25519",
      key,
      sig as Uint8Array<ArrayBuffer>,
      utf8(message),
    );
  } catch {
    return false;
  }
}

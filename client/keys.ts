/**
 * @module
 * Device and account keys for Sealpost clients: Ed25519 key pairs from WebCrypto, the device
 * certificate, and the authentication proof. Works in browsers and Deno. Private keys never leave
 * the device; `exportKeyPair` gives JWKs an app may keep in IndexedDB or a file.
 */

/**
 * base64url without padding. The client's own copy of `relay/base/encoding.ts`'s: the client
 * package is self-contained (no import from the relay), and runs in browsers without
 * `Uint8Array.prototype.toBase64`.
 */
export function b64url(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes base64url (with or without padding). */
export function fromB64url(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** An Ed25519 key pair and its public id (raw public key, base64url). */
export type KeyPair = { id: string; publicKey: CryptoKey; privateKey: CryptoKey };

/** Generates an Ed25519 key pair. */
export async function generateKeyPair(): Promise<KeyPair> {
  const pair = await crypto.subtle.generateKey("Ed25519", true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { id: b64url(raw), publicKey: pair.publicKey, privateKey: pair.privateKey };
}

/** Signs the UTF-8 bytes of `text`, returning base64url. */
export async function sign(key: KeyPair, text: string): Promise<string> {
  const sig = await crypto.subtle.sign("Ed25519", key.privateKey, new TextEncoder().encode(text));
  return b64url(new Uint8Array(sig));
}

/** Serializable form of a key pair. */
export type ExportedKeyPair = { id: string; privateJwk: JsonWebKey; publicJwk: JsonWebKey };

/** Exports a key pair as JWKs for storage on the device. */
export async function exportKeyPair(key: KeyPair): Promise<ExportedKeyPair> {
  return {
    id: key.id,
    privateJwk: await crypto.subtle.exportKey("jwk", key.privateKey),
    publicJwk: await crypto.subtle.exportKey("jwk", key.publicKey),
  };
}

/** Imports a key pair exported by {@link exportKeyPair}. */
export async function importKeyPair(data: ExportedKeyPair): Promise<KeyPair> {
  return {
    id: data.id,
    privateKey: await crypto.subtle.importKey("jwk", data.privateJwk, "Ed25519", true, ["sign"]),
    publicKey: await crypto.subtle.importKey("jwk", data.publicJwk, "Ed25519", true, ["verify"]),
  };
}

/**
 * The keys of one device: its own key pair, its account id and the certificate by which the
 * account root key vouches for it.
 */
export type DeviceIdentity = { account: string; device: KeyPair; cert: string };

/**
 * Creates a device identity. With no account key, the device key is also the account key
 * (a single-device app): the certificate is a self-signature.
 *
 * @example
 * ```ts
 * const root = await generateKeyPair();
 * const phone = await createDeviceIdentity(root);
 * const laptop = await createDeviceIdentity(root);
 * ```
 */
export async function createDeviceIdentity(accountKey?: KeyPair): Promise<DeviceIdentity> {
  const device = await generateKeyPair();
  const root = accountKey ?? device;
  return { account: root.id, device, cert: await sign(root, `sealpost:device:v1:${device.id}`) };
}

/** The proof for a nonce: the device's signature over `sealpost:auth:v1:<nonce>`. */
export function proveNonce(device: KeyPair, nonce: string): Promise<string> {
  return sign(device, `sealpost:auth:v1:${nonce}`);
}

/**
 * @module
 * How a Sealpost device is an MLS member (docs/mls.md "Identity"). The MLS signature key of a
 * device **is** its Sealpost device key (Ed25519), and its basic credential carries the account
 * id and the device certificate (`account ‖ cert`, 32 + 64 bytes). Any member can then check,
 * with no help from the relay, that a leaf (or a claimed KeyPackage) belongs to the account it
 * names: the certificate is the account root key's signature over `sealpost:device:v1:<device>`,
 * where `<device>` is the leaf's signature key. A relay that hands out a forged KeyPackage
 * cannot produce that signature.
 */

import {
  type AuthenticationService,
  type CiphersuiteImpl,
  type ClientConfig,
  type Credential,
  decodeMlsMessage,
  defaultCapabilities,
  defaultKeyPackageEqualityConfig,
  defaultKeyRetentionConfig,
  defaultLifetime,
  defaultLifetimeConfig,
  defaultPaddingConfig,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  type KeyPackage,
  type PrivateKeyPackage,
} from "ts-mls";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { b64url, type DeviceIdentity, fromB64url } from "../../client/mod.ts";

/** The MLS ciphersuite of the example: X25519, AES-128-GCM, SHA-256, Ed25519 (0x0001). */
export const CIPHERSUITE = "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519";

/** The Sealpost key-package `kind` its KeyPackages are stored under. */
export const KEY_PACKAGE_KIND = "mls-0x0001";

let impl: Promise<CiphersuiteImpl> | undefined;

/** The ciphersuite implementation (WebCrypto where it can, pure TypeScript elsewhere). */
export function ciphersuite(): Promise<CiphersuiteImpl> {
  impl ??= getCiphersuiteImpl(getCiphersuiteFromName(CIPHERSUITE));
  return impl;
}

/** The basic credential of a device: its account id and certificate, as raw bytes. */
export function credentialOf(identity: DeviceIdentity): Credential {
  const account = fromB64url(identity.account);
  const cert = fromB64url(identity.cert);
  const bytes = new Uint8Array(96);
  bytes.set(account, 0);
  bytes.set(cert, 32);
  return { credentialType: "basic", identity: bytes };
}

/** The account a credential names, or null when it is not one of ours. */
export function accountOf(credential: Credential): string | null {
  if (credential.credentialType !== "basic" || credential.identity.length !== 96) return null;
  return b64url(credential.identity.subarray(0, 32));
}

/**
 * The authentication service: a credential is valid when its certificate is the account key's
 * signature over the leaf's signature key (the device id). Checked by ts-mls for every leaf it
 * meets: KeyPackages being added, members of a joined tree, commit senders.
 */
export const authService: AuthenticationService = {
  async validateCredential(credential, signaturePublicKey) {
    const account = accountOf(credential);
    if (!account || credential.credentialType !== "basic") return false;
    try {
      const key = await crypto.subtle.importKey(
        "raw",
        credential.identity.slice(0, 32),
        "Ed25519",
        false,
        ["verify"],
      );
      const text = `sealpost:device:v1:${b64url(signaturePublicKey)}`;
      return await crypto.subtle.verify(
        "Ed25519",
        key,
        credential.identity.slice(32, 96),
        new TextEncoder().encode(text),
      );
    } catch {
      return false;
    }
  },
};

/** The client configuration every group state of the example runs with. */
export const clientConfig: ClientConfig = {
  keyRetentionConfig: defaultKeyRetentionConfig,
  lifetimeConfig: defaultLifetimeConfig,
  keyPackageEqualityConfig: defaultKeyPackageEqualityConfig,
  paddingConfig: defaultPaddingConfig,
  authService,
};

/** The device key as ts-mls signs with it: PKCS#8 private key and raw public key. */
async function signatureKeyPair(
  identity: DeviceIdentity,
): Promise<{ signKey: Uint8Array; publicKey: Uint8Array }> {
  const signKey = new Uint8Array(
    await crypto.subtle.exportKey("pkcs8", identity.device.privateKey),
  );
  return { signKey, publicKey: fromB64url(identity.device.id) };
}

/** A KeyPackage with its private half (which never leaves the device). */
export type KeyPackagePair = { publicPackage: KeyPackage; privatePackage: PrivateKeyPackage };

/** Generates a KeyPackage signed by the device key. */
export async function newKeyPackage(identity: DeviceIdentity): Promise<KeyPackagePair> {
  return await generateKeyPackageWithKey(
    credentialOf(identity),
    defaultCapabilities(),
    defaultLifetime,
    [],
    await signatureKeyPair(identity),
    await ciphersuite(),
  );
}

/** A KeyPackage as uploaded to Sealpost: the TLS-encoded `MLSMessage`, base64url. */
export function encodeKeyPackage(keyPackage: KeyPackage): string {
  return b64url(
    encodeMlsMessage({ keyPackage, wireformat: "mls_key_package", version: "mls10" }),
  );
}

/** Decodes a claimed package; null when it is not an MLS KeyPackage. */
export function decodeKeyPackage(text: string): KeyPackage | null {
  try {
    const message = decodeMlsMessage(fromB64url(text), 0)?.[0];
    return message?.wireformat === "mls_key_package" ? message.keyPackage : null;
  } catch {
    return null;
  }
}

/** The KeyPackageRef (RFC 9420 §5.2) as base64url: how a Welcome names its new members. */
export async function keyPackageRef(keyPackage: KeyPackage): Promise<string> {
  return b64url(await makeKeyPackageRef(keyPackage, (await ciphersuite()).hash));
}

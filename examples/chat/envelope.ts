/**
 * @module
 * What the chat puts inside Sealpost message bodies (docs/mls.md "Message bodies"):
 *
 * - a group message body is exactly one TLS-encoded `MLSMessage` (a Commit or an application
 *   message, both `PrivateMessage`s), so any RFC 9420 client can read the stream;
 * - a Welcome body is the 8-byte big-endian `seq` of the Commit that added the device, then the
 *   `MLSMessage` (`mls_welcome`): the joiner's state is the one right after that Commit, so it
 *   reads on from there;
 * - an application message carries a small JSON {@link Payload}; an image's bytes travel as a
 *   blob encrypted with a fresh AES-256-GCM key that only the MLS-protected payload carries;
 * - an ephemeral (typing) body is AES-GCM under a key exported from the current epoch, so
 *   typing never spends MLS ratchet generations (nothing is stored to catch up on).
 */

import { type ClientState, mlsExporter } from "ts-mls";
import { b64url, fromB64url, pad, unpad } from "../../client/mod.ts";
import type { OutboxEntry } from "./chat_group.ts";
import { ciphersuite } from "./mls_identity.ts";

/** The content of an MLS application message. */
export type Payload =
  | { t: "text"; from: string; name: string; text: string }
  | { t: "hello"; from: string; name: string }
  | {
    t: "image";
    from: string;
    name: string;
    /** The blob holding `iv ‖ AES-256-GCM ciphertext` of the image. */
    blob: string;
    /** The image's AES-256-GCM key (raw, base64url). */
    key: string;
    mime: string;
    file: string;
    size: number;
  };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Serializes a payload for `createApplicationMessage`, padded to its size bucket. */
export function encodePayload(payload: Payload): Uint8Array {
  return pad(encoder.encode(JSON.stringify(payload)));
}

/** Parses a decrypted payload; null for anything that is not one. */
export function decodePayload(bytes: Uint8Array): Payload | null {
  try {
    const value = JSON.parse(decoder.decode(unpad(bytes)));
    if (typeof value?.t !== "string" || typeof value?.from !== "string") return null;
    return value as Payload;
  } catch {
    return null;
  }
}

/** The transcript entry of a payload sent in `epoch` (without its `seq` and time). */
export function entryOf(
  payload: Payload,
  epoch: bigint,
  from: { account: string; device: string },
  own: boolean,
  verified: boolean,
): OutboxEntry {
  return {
    epoch: Number(epoch),
    from,
    name: payload.name,
    own,
    kind: payload.t,
    ...(payload.t === "text" ? { text: payload.text } : {}),
    ...(payload.t === "image"
      ? {
        image: {
          blob: payload.blob,
          key: payload.key,
          mime: payload.mime,
          file: payload.file,
          size: payload.size,
        },
      }
      : {}),
    verified,
  };
}

/** A Welcome body: the Commit's `seq` (u64, big-endian) then the `MLSMessage`. */
export function encodeWelcomeBody(commitSeq: number, mlsMessage: Uint8Array): string {
  const out = new Uint8Array(8 + mlsMessage.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(commitSeq));
  out.set(mlsMessage, 8);
  return b64url(out);
}

/** Splits a Welcome body; null when it is too short to be one. */
export function decodeWelcomeBody(body: string): { commitSeq: number; message: Uint8Array } | null {
  const bytes = fromB64url(body);
  if (bytes.length < 9) return null;
  const commitSeq = Number(new DataView(bytes.buffer).getBigUint64(0));
  return { commitSeq, message: bytes.subarray(8) };
}

/** Encrypts a file with a fresh key: `iv ‖ ciphertext` for the blob, and the key to share. */
export async function sealAttachment(
  bytes: Uint8Array<ArrayBuffer>,
): Promise<{ blob: Uint8Array<ArrayBuffer>; key: string }> {
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, true, [
    "encrypt",
  ]);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  // Padded inside the encryption, so the blob's size only tells its bucket.
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, pad(bytes)),
  );
  const blob = new Uint8Array(12 + sealed.length);
  blob.set(iv, 0);
  blob.set(sealed, 12);
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", key));
  return { blob, key: b64url(raw) };
}

/** Decrypts a blob sealed by {@link sealAttachment} (throws when it was tampered with). */
export async function openAttachment(
  blob: Uint8Array,
  key: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const aes = await crypto.subtle.importKey("raw", fromB64url(key), "AES-GCM", false, [
    "decrypt",
  ]);
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: blob.slice(0, 12) },
    aes,
    blob.slice(12),
  );
  return new Uint8Array(unpad(new Uint8Array(plain)));
}

/** The AES-GCM key for ephemeral bodies in the epoch of `state`: `MLS-Exporter(label, "", 32)`. */
export async function ephemeralKey(state: ClientState): Promise<CryptoKey> {
  const raw = await mlsExporter(
    state.keySchedule.exporterSecret,
    "sealpost chat ephemeral",
    new Uint8Array(0),
    32,
    await ciphersuite(),
  );
  return await crypto.subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
}

/** An ephemeral body: `epoch (u64) ‖ iv ‖ AES-GCM(key of that epoch, JSON)`. */
export async function sealEphemeral(
  epoch: bigint,
  key: CryptoKey,
  value: unknown,
): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv },
      key,
      pad(encoder.encode(JSON.stringify(value))),
    ),
  );
  const out = new Uint8Array(8 + 12 + sealed.length);
  new DataView(out.buffer).setBigUint64(0, epoch);
  out.set(iv, 8);
  out.set(sealed, 20);
  return b64url(out);
}

/** The epoch an ephemeral body was sealed in (to pick the key), or null. */
export function ephemeralEpoch(body: string): bigint | null {
  const bytes = fromB64url(body);
  return bytes.length < 21 ? null : new DataView(bytes.buffer).getBigUint64(0);
}

/** Opens an ephemeral body with the key of its epoch; null when it does not open. */
export async function openEphemeral(body: string, key: CryptoKey): Promise<unknown> {
  try {
    const bytes = fromB64url(body);
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: bytes.slice(8, 20) },
      key,
      bytes.slice(20),
    );
    return JSON.parse(decoder.decode(unpad(new Uint8Array(plain))));
  } catch {
    return null;
  }
}

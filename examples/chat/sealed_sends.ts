/**
 * @module
 * Sealed sends for the chat example (issue 16): text and hello messages go to the relay without a
 * sender. The group's send capability is `MLS-Exporter("sealpost chat send capability", "", 32)`
 * of the current epoch, so every Commit rotates it; the device that made a Commit publishes the
 * new epoch's verifier (`setSendCapability`), and so does the remover after the relay membership
 * ends (which clears the verifier). Until a member has processed the newest Commit its
 * capability is stale and the relay answers `404`: the message then goes as a normal send.
 *
 * The relay stores a sealed message with `from: null`, so the sender is authenticated inside the
 * ciphertext: the payload carries the sending device's id and its Ed25519 signature over
 * `sealpost-chat:v1:<group>:<epoch>:<payload>`; a receiver accepts it only when that device is a
 * leaf of the group's ratchet tree whose credential names the payload's account.
 */

import { type ClientState, createApplicationMessage, mlsExporter, type RatchetTree } from "ts-mls";
import {
  b64url,
  fromB64url,
  type HttpClient,
  type KeyPair,
  SealedSender,
  SealpostError,
  type Session,
  setSendCapability,
  sign,
} from "../../client/mod.ts";
import { membersOf } from "./chat_group.ts";
import { encodePayload, type Payload } from "./envelope.ts";
import { ciphersuite } from "./mls_identity.ts";

/** A payload with its sender's device and signature (inside the MLS ciphertext). */
export type SignedPayload = Payload & { device?: string; sig?: string };

/** The group's send capability in the epoch of `state`. */
export async function sendCapabilityOf(state: ClientState): Promise<string> {
  const raw = await mlsExporter(
    state.keySchedule.exporterSecret,
    "sealpost chat send capability",
    new Uint8Array(0),
    32,
    await ciphersuite(),
  );
  return b64url(raw);
}

/** Publishes the verifier of the current epoch's capability (after this device's Commit). */
export async function publishCapability(
  api: HttpClient,
  group: string,
  state: ClientState,
): Promise<void> {
  await setSendCapability(api, group, await sendCapabilityOf(state));
}

function signedText(group: string, epoch: bigint, payload: Payload): string {
  return `sealpost-chat:v1:${group}:${epoch}:${JSON.stringify(payload)}`;
}

/** Adds the sending device and its signature to a payload. */
export async function signPayload(
  device: KeyPair,
  group: string,
  epoch: bigint,
  payload: Payload,
): Promise<SignedPayload> {
  return {
    ...payload,
    device: device.id,
    sig: await sign(device, signedText(group, epoch, payload)),
  };
}

/** The MLS application message of `payload`, signed by `device` inside (padded, encrypted). */
export async function applicationMessage(
  device: KeyPair,
  group: string,
  state: ClientState,
  payload: Payload,
): ReturnType<typeof createApplicationMessage> {
  const signed = await signPayload(device, group, state.groupContext.epoch, payload);
  return await createApplicationMessage(state, encodePayload(signed), await ciphersuite());
}

/**
 * The sender of a sealed message, proved by its signature and the ratchet tree; null when the
 * payload is unsigned, the signature is wrong, or the device is not the account's leaf.
 */
export async function sealedSender(
  payload: SignedPayload,
  group: string,
  epoch: bigint,
  tree: RatchetTree,
): Promise<{ account: string; device: string } | null> {
  const { device, sig, ...plain } = payload;
  if (!device || !sig) return null;
  const leaf = membersOf(tree).find((m) => m.device === device && m.account === payload.from);
  if (!leaf) return null;
  try {
    const key = await crypto.subtle.importKey("raw", fromB64url(device), "Ed25519", false, [
      "verify",
    ]);
    const ok = await crypto.subtle.verify(
      "Ed25519",
      key,
      fromB64url(sig),
      new TextEncoder().encode(signedText(group, epoch, plain as Payload)),
    );
    return ok ? { account: payload.from, device } : null;
  } catch {
    return null;
  }
}

/**
 * Sends `body` sealed when the group's capability of `state`'s epoch is current (no blob), else
 * as a normal send; resolves with the `seq`.
 */
export async function deliver(
  api: HttpClient,
  session: Session,
  group: string,
  state: ClientState,
  body: string,
  blob?: string,
): Promise<number> {
  if (!blob) {
    const clientId = b64url(crypto.getRandomValues(new Uint8Array(12)));
    try {
      const sealed = new SealedSender(api.baseUrl, api.fetchFn);
      return (await sealed.send(group, await sendCapabilityOf(state), {
        body,
        client_id: clientId,
      }))
        .seq;
    } catch (error) {
      // A stale capability (a Commit this device has not processed yet) or none published.
      if (!(error instanceof SealpostError) || error.status !== 404) throw error;
    }
  }
  return (await session.send(group, { body, ...(blob ? { blob } : {}) })).seq!;
}

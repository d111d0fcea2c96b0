/**
 * @module
 * Push targets (PROTOCOL.md `PUT/DELETE /v1/devices/me/push`): the request body's four shapes
 * as zod schemas, the checks a target must pass before it is stored (its provider is
 * configured here, an APNs topic is allowed, Web Push keys are a real P-256 point and a 16-byte
 * secret, an endpoint passes the address guard), and storing or removing a device's one target.
 * Replacing a target keeps the device's pending wake-up and its minimum-interval clock.
 */

import { z } from "zod";
import type { Clock } from "../base/clock.ts";
import type { Db } from "../store/database.ts";
import { fromBase64Url } from "../base/encoding.ts";
import { invalid } from "../errors.ts";
import { b64url } from "../protocol.ts";
import type { AddressGuard } from "./address_guard.ts";
import { importP256 } from "./encrypt.ts";
import type { PushKind } from "./mod.ts";

const endpoint = (schemes: string[]) =>
  z.string().max(2048).refine((value) => {
    try {
      const url = new URL(value);
      return schemes.includes(url.protocol) && !url.username && !url.password;
    } catch {
      return false;
    }
  }, `must be an absolute ${schemes.map((s) => s.replace(":", "")).join(" or ")} URL`);

const WebPushKeys = z.object({
  p256dh: b64url.length(87, "must be a 65-byte P-256 public key in base64url (87 chars)"),
  auth: b64url.length(22, "must be a 16-byte secret in base64url (22 chars)"),
});

/** The body of `PUT /v1/devices/me/push`. */
export const PushTargetBody = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("webpush"), endpoint: endpoint(["https:"]), keys: WebPushKeys }),
  z.object({
    kind: z.literal("unifiedpush"),
    endpoint: endpoint(["https:", "http:"]),
    keys: WebPushKeys.optional(),
  }),
  z.object({
    kind: z.literal("apns"),
    token: z.string().regex(/^[0-9a-fA-F]{64,200}$/, "must be the APNs device token in hex"),
    topic: z.string().min(1).max(255).regex(
      /^[A-Za-z0-9.\-]+$/,
      "must be the app's bundle id (letters, digits, dots, hyphens)",
    ),
    sandbox: z.boolean().optional(),
  }),
  z.object({
    kind: z.literal("fcm"),
    token: z.string().min(1).max(4096).regex(/^\S+$/, "must be an FCM registration token"),
  }),
]);
export type PushTargetBody = z.infer<typeof PushTargetBody>;

/** What registering a target is checked against. */
export type TargetRules = {
  /** Why `kind` cannot be used here (not configured), or null when it can. */
  unavailable(kind: PushKind): string | null;
  /** Bundle ids APNs targets may name; undefined → any. */
  apnsTopics?: readonly string[];
  guard: AddressGuard;
};

/** Checks a parsed body against this relay's rules; throws `400 invalid_request`. */
export async function checkTarget(body: PushTargetBody, rules: TargetRules): Promise<void> {
  const why = rules.unavailable(body.kind);
  if (why) throw invalid(why);
  if (body.kind === "apns" && rules.apnsTopics && !rules.apnsTopics.includes(body.topic)) {
    throw invalid(
      `topic: this relay pushes only to ${rules.apnsTopics.join(", ")} (SEALPOST_APNS_TOPIC)`,
    );
  }
  if ((body.kind === "webpush" || body.kind === "unifiedpush") && body.keys) {
    const key = fromBase64Url(body.keys.p256dh);
    try {
      await importP256(new Uint8Array(key ?? []));
    } catch {
      throw invalid("keys.p256dh: must be an uncompressed P-256 public key");
    }
    if (fromBase64Url(body.keys.auth)?.length !== 16) {
      throw invalid("keys.auth: must be a 16-byte secret in base64url");
    }
  }
  if (body.kind === "webpush" || body.kind === "unifiedpush") {
    const refusal = await rules.guard.refusal(body.endpoint);
    if (refusal) {
      throw invalid(
        `endpoint: refused because ${refusal}; an operator can allow such endpoints with SEALPOST_UNIFIEDPUSH_ALLOW_PRIVATE=true`,
      );
    }
  }
}

/** Stores `device`'s target, replacing any previous one. */
export async function storeTarget(
  db: Db,
  clock: Clock,
  device: string,
  body: PushTargetBody,
): Promise<void> {
  const now = clock.now();
  const fields = {
    kind: body.kind,
    endpoint: "endpoint" in body ? body.endpoint : null,
    p256dh: "keys" in body ? body.keys?.p256dh ?? null : null,
    auth: "keys" in body ? body.keys?.auth ?? null : null,
    token: "token" in body ? body.token : null,
    topic: body.kind === "apns" ? body.topic : null,
    sandbox: body.kind === "apns" ? body.sandbox ?? false : false,
    updated_at: now,
  };
  await db.insertInto("push_targets")
    .values({
      device_id: device,
      ...fields,
      created_at: now,
      last_push_at: null,
      idle_wake_at: null,
    })
    .onConflict((oc) => oc.column("device_id").doUpdateSet(fields))
    .execute();
}

/** Removes `device`'s target and its pending wake-up; true when there was one. */
export async function removeTarget(db: Db, device: string): Promise<boolean> {
  const result = await db.deleteFrom("push_targets").where("device_id", "=", device)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/**
 * @module
 * The wire types of PROTOCOL.md: zod schemas for every request body and client WebSocket frame,
 * parsed here at the edge and trusted inside, and the {@link ServerFrame} union of every frame
 * the relay sends. Unknown fields are ignored (zod strips them); a missing
 * or malformed field becomes `400 invalid_request` naming the field.
 */

import { z } from "zod";
import { type ErrorCode, invalid } from "./errors.ts";
import { isKeyId } from "./base/keys.ts";
import type { PublicLimits } from "./config/limits.ts";

const B64URL = /^[A-Za-z0-9_-]*$/;

/** A base64url string without padding. */
export const b64url = z.string().regex(B64URL, "must be base64url without padding");

/** An Ed25519 public key id: 32 bytes as 43 base64url chars. */
const KEY_ID = "must be a 32-byte Ed25519 public key in base64url";
export const keyId = z.string().regex(/^[A-Za-z0-9_-]{43}$/, KEY_ID).refine(isKeyId, KEY_ID);

/** An Ed25519 signature: 64 bytes as 86 base64url chars. */
export const signature = b64url.length(86, "must be a 64-byte signature in base64url");

/** A group id: 16 bytes as 22 base64url chars. */
export const groupId = b64url.length(22, "must be 16 bytes in base64url (22 chars)");

/** A blob id: 1–64 base64url characters. */
export const blobId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be a blob id");

/** An id the relay hands out with `randomId` (invites): base64url, 1–64 characters. */
export const shortId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be an id");

export const RegisterBody = z.object({
  account: keyId,
  device: keyId,
  cert: signature,
  nonce: b64url.min(1).max(128),
  sig: signature,
  name: z.string().max(100).optional(),
  platform: z.string().max(50).optional(),
  invite: z.string().min(1).max(200).optional(),
});
export type RegisterBody = z.infer<typeof RegisterBody>;

export const LoginBody = z.object({
  device: keyId,
  nonce: b64url.min(1).max(128),
  sig: signature,
});
export type LoginBody = z.infer<typeof LoginBody>;

/** The value at `path` inside `input`, or undefined when any step is missing. */
function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** The JSON type name of a value, as an error message shows it. */
function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/**
 * Describes the first problem zod found as `field: problem`. With `input` (what was parsed),
 * a wrong type is told apart from a missing field by looking the field up — zod 4 does not
 * report the input in its issues, so without it every type error would read as missing.
 */
export function describeIssue(error: z.ZodError, input?: unknown): string {
  const issue = error.issues[0];
  if (!issue) return "invalid request";
  const path = issue.path.join(".");
  if (issue.code === "invalid_type") {
    const value = input === undefined ? issue.input : valueAt(input, issue.path);
    if (value === undefined) return `missing required field ${path}`;
    const problem = `expected ${issue.expected}, got ${jsonType(value)}`;
    return path ? `${path}: ${problem}` : problem;
  }
  return path ? `${path}: ${issue.message}` : issue.message;
}

/**
 * Parses `input` with `schema`, throwing `400 invalid_request` that names the field.
 *
 * @example
 * ```ts
 * const body = parse(LoginBody, await c.req.json());
 * ```
 */
export function parse<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (!result.success) throw invalid(describeIssue(result.error, input));
  return result.data;
}

/** A send (HTTP body, or the fields of a WebSocket `send` frame). */
export const SendBody = z.object({
  client_id: z.string().min(1).max(64).refine((s) => !s.includes("\0"), "must not contain NUL")
    .optional(),
  body: b64url,
  ttl_s: z.number().int().positive().optional(),
  to: z.array(keyId).min(1).max(1000).optional(),
  blob: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be a blob id").optional(),
  ephemeral: z.boolean().optional(),
});
export type SendBody = z.infer<typeof SendBody>;

/** A send capability: 32 bytes in base64url (43 characters). */
export const capability = z.string().regex(/^[A-Za-z0-9_-]{43}$/, "must be 32 bytes in base64url");

/**
 * `POST /v1/sealed/groups/:id/messages` and the sealed WebSocket's `send` (issue 16): a send
 * without blob or `ephemeral`, carrying the group's send capability `cap`.
 */
export const SealedSendBody = SendBody.omit({ blob: true, ephemeral: true }).extend({
  cap: capability,
});
export type SealedSendBody = z.infer<typeof SealedSendBody>;

/** `PUT /v1/groups/:id/send_capability`: the SHA-256 of the group's new send capability. */
export const PutCapabilityBody = z.object({
  verifier: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "must be a SHA-256 digest in base64url"),
});

/** `POST /v1/blobs`: the group the blob belongs to, its exact size and SHA-256. */
export const CreateBlobBody = z.object({
  group: groupId,
  size: z.number().int().nonnegative(),
  sha256: b64url.length(43, "must be a 32-byte SHA-256 digest in base64url (43 chars)"),
});

export const CreateGroupBody = z.object({
  id: groupId.optional(),
  members: z.array(keyId).max(10_000).optional(),
  retention_s: z.number().int().nonnegative().optional(),
});

export const PutMemberBody = z.object({
  role: z.enum(["owner", "admin", "member"]).optional(),
});

export const AckBody = z.object({
  cursors: z.record(z.string(), z.number().int().nonnegative()),
});

/** A key-package kind: 1–64 of `a-z 0-9 . _ -` (`mls`, `mls-0x0001`, `signal.prekey`). */
export const keyKind = z.string().regex(
  /^[a-z0-9._-]{1,64}$/,
  "must be 1-64 characters of a-z, 0-9, '.', '_' or '-'",
);

/** A non-empty base64url package (its decoded size is checked against the message limit). */
const keyPackage = b64url.min(1, "must not be empty");

/** `PUT /v1/devices/me/keys`: one-time packages (≤ 100 a call) and an optional last resort. */
export const PutKeysBody = z.object({
  kind: keyKind,
  packages: z.array(keyPackage).max(100, "at most 100 packages per call"),
  last_resort: keyPackage.optional(),
});
export type PutKeysBody = z.infer<typeof PutKeysBody>;

/** `POST /v1/accounts/:account/keys/claim`. */
export const ClaimKeysBody = z.object({ kind: keyKind });

/** An optional `ref` echoed in replies: a string or number chosen by the client. */
const ref = z.union([z.string().max(128), z.number()]).optional();

/** Frames a client may send after `auth`. */
export const ClientFrame = z.discriminatedUnion("t", [
  z.object({
    t: z.literal("sub"),
    ref,
    groups: z.array(groupId).max(10_000).nullable(),
    since: z.record(z.string(), z.number().int().nonnegative()).optional(),
    presence: z.boolean().optional(),
    /** Replay in `msgs` frames of many messages (v1 addition `batched_replay`). */
    batch: z.boolean().optional(),
  }),
  z.object({ t: z.literal("unsub"), ref, groups: z.array(groupId).nullable() }),
  SendBody.extend({ t: z.literal("send"), ref, group: groupId }),
  z.object({ t: z.literal("ack"), ref, group: groupId, seq: z.number().int().nonnegative() }),
  z.object({ t: z.literal("presence"), ref, group: groupId }),
  z.object({ t: z.literal("ping"), ref }),
  /** Accepts the account's invitation to a group (issue 16); answered by `accepted`. */
  z.object({ t: z.literal("accept"), ref, group: groupId }),
]);
export type ClientFrame = z.infer<typeof ClientFrame>;

/** The first frame of a WebSocket: a token, or a signature over the hello nonce. */
export const AuthFrame = z.union([
  z.object({ t: z.literal("auth"), token: z.string().min(1).max(200) }),
  z.object({ t: z.literal("auth"), device: keyId, sig: signature }),
]);
export type AuthFrame = z.infer<typeof AuthFrame>;

/** A committed message as the relay keeps it in memory and on the bus. */
export type StoredMessage = {
  group: string;
  seq: number;
  /** Null for a sealed send: the relay never knew the sender. */
  from: { account: string; device: string } | null;
  created_at: number;
  expires_at: number | null;
  /** base64url ciphertext. */
  body: string;
  blob?: { id: string; size: number };
  to?: string[];
};

/** Membership events of PROTOCOL.md. */
export type MembershipEvent =
  | "member_added"
  | "member_removed"
  | "role_changed"
  | "deleted"
  /** An invited account accepted (issue 16): its presence may now be shown to the group. */
  | "member_accepted";

/** A frame of the sealed WebSocket: a sealed `send` or `ping`. */
export const SealedFrame = z.discriminatedUnion("t", [
  SealedSendBody.extend({ t: z.literal("send"), ref, group: groupId }),
  z.object({ t: z.literal("ping"), ref }),
]);
export type SealedFrame = z.infer<typeof SealedFrame>;

/** The `ref` a client put on a frame, echoed in the reply. */
export type Ref = string | number;

/**
 * Every frame the relay sends on a WebSocket (PROTOCOL.md), typed as the client reads it. Built
 * inside the relay, so it is a type rather than a schema; every place that sends a frame sends
 * one of these (`msg` frames are serialized once per message by `messageFrame`).
 */
export type ServerFrame =
  | { t: "hello"; nonce: string; version: number; server: string; limits: PublicLimits }
  | { t: "ready"; account: string; device: string }
  | {
    t: "error";
    code: ErrorCode;
    message: string;
    ref?: Ref;
    retry_after_ms?: number;
  }
  | { t: "pong"; ref?: Ref }
  | { t: "synced"; group: string; seq: number }
  | ({ t: "msg" } & StoredMessage)
  /** Replayed messages of one group, `seq` ascending, to connections that asked (`batch`). */
  | { t: "msgs"; group: string; messages: StoredMessage[] }
  | {
    t: "eph";
    group: string;
    from: { account: string; device: string };
    body: string;
    to?: string[];
  }
  /** A device of the group came online or went offline (to `presence: true` subscribers). */
  | { t: "presence"; group: string; device: string; online: boolean }
  /** The answer to a `presence` frame: the group's devices online now. */
  | { t: "presence"; group: string; online: string[]; ref?: Ref }
  | { t: "group"; group: string; event: MembershipEvent; account: string }
  /** The answer to an `accept` frame (issue 16). */
  | { t: "accepted"; group: string; ref?: Ref }
  | {
    t: "sent";
    group: string;
    ref?: Ref;
    seq?: number;
    created_at?: number;
    expires_at?: number | null;
    delivered?: number;
  };

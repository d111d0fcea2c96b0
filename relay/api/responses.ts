/**
 * @module
 * The shapes the relay answers with, as zod schemas beside the request schemas of
 * `relay/protocol.ts`: HTTP response bodies and the WebSocket frames the relay sends. The relay
 * builds its answers with plain objects typed by the services; these schemas exist so the
 * OpenAPI and AsyncAPI documents (`openapi.ts`, `asyncapi.ts`) describe answers from the same
 * kind of source as requests, and the example-replay test checks real answers against them.
 * Objects are open (extra fields allowed): v1 additions add fields, and clients ignore unknown
 * ones.
 */

import { z } from "zod";
import { type ErrorCode, ERRORS } from "../errors.ts";
import { groupId, keyId } from "../protocol.ts";

const time = z.number().int().describe("milliseconds since the Unix epoch");
const b64 = z.string().regex(/^[A-Za-z0-9_-]*$/);

/** The codes of the error table a request can get (rows with an HTTP status). */
const ERROR_CODES = Object.entries(ERRORS).filter(([, row]) => "status" in row).map(([code]) =>
  code
) as [ErrorCode, ...ErrorCode[]];

/** `{"error":{"code","message","retry_after_ms"?}}` with a code of the one error table. */
export const ErrorBody = z.object({
  error: z.object({
    code: z.enum(ERROR_CODES),
    message: z.string(),
    retry_after_ms: z.number().int().nonnegative().optional(),
  }),
});

const wireRate = z.object({ count: z.number().int(), per_s: z.number() }).nullable();

/** The `limits` object of `/v1/info` and `hello`. */
export const Limits = z.object({
  max_message_bytes: z.number().int(),
  max_blob_bytes: z.number().int(),
  max_body_bytes: z.number().int().optional(),
  max_account_bytes: z.number().int().nullable().optional(),
  max_group_members: z.number().int(),
  max_groups_per_account: z.number().int(),
  max_connections_per_device: z.number().int(),
  max_ttl_s: z.number().int().nullable(),
  default_retention_s: z.number().int(),
  rate_send: wireRate,
  rate_send_burst: z.number().int(),
  rate_poll: wireRate,
  rate_auth: wireRate,
  rate_claim: wireRate,
  claim_per_target: wireRate.optional(),
});

/** `GET /v1/info`. */
export const Info = z.object({
  name: z.string(),
  version: z.string(),
  registration: z.enum(["open", "invite", "closed"]),
  limits: Limits,
  push: z.object({
    webpush: z.object({ vapid_public_key: b64 }).optional(),
    unifiedpush: z.boolean(),
    apns: z.boolean(),
    fcm: z.boolean(),
  }),
  features: z.array(z.string()).optional(),
  privacy: z.object({ presence: z.boolean(), last_seen_granularity_s: z.number().int() })
    .optional(),
});

export const Challenge = z.object({ nonce: b64, expires_at: time });
export const Token = z.object({ token: b64, expires_at: time });
export const Registered = Token.extend({ account: keyId, device: keyId });

export const Device = z.object({
  id: keyId,
  cert: b64,
  name: z.string().nullable(),
  platform: z.string().nullable(),
  created_at: time,
  /** Null while the account has only been invited to the groups it shares with the viewer. */
  last_seen_at: time.nullable(),
  status: z.enum(["active", "inactive", "revoked"]),
});
export const DeviceList = z.object({ devices: z.array(Device) });

export const Member = z.object({
  account: keyId,
  role: z.enum(["owner", "admin", "member"]),
  added_at: time,
  state: z.enum(["invited", "accepted"]),
});
export const Group = z.object({
  id: groupId,
  members: z.array(Member),
  retention_s: z.number().int().nonnegative(),
  last_seq: z.number().int().nonnegative(),
  created_at: time,
});
export const GroupList = z.object({
  groups: z.array(Group.extend({ cursor: z.number().int().nonnegative() })),
});

/** A stored message (HTTP pages and the inbox; `{"t":"msg",…}` over WebSocket). */
export const Message = z.object({
  group: groupId,
  seq: z.number().int().positive(),
  /** Null for a sealed send (issue 16): the relay never knew the sender. */
  from: z.object({ account: keyId, device: keyId }).nullable(),
  created_at: time,
  expires_at: time.nullable(),
  body: b64,
  blob: z.object({ id: z.string(), size: z.number().int() }).optional(),
  to: z.array(keyId).optional(),
});
export const Page = z.object({
  messages: z.array(Message),
  last_seq: z.number().int().nonnegative(),
  has_more: z.boolean(),
});
export const Inbox = z.object({ messages: z.array(Message) });
export const Sent = z.object({
  seq: z.number().int().positive(),
  created_at: time,
  expires_at: time.nullable(),
});
export const Delivered = z.object({ delivered: z.number().int().nonnegative() });

export const CreatedBlob = z.object({
  id: z.string(),
  upload: z.object({
    url: z.string(),
    method: z.literal("PUT"),
    headers: z.record(z.string(), z.string()),
  }),
  expires_at: time,
});

export const KeyCounts = z.object({
  kinds: z.record(z.string(), z.object({ available: z.number().int(), last_resort: z.boolean() })),
});
export const Claimed = z.object({
  packages: z.array(z.object({ device: keyId, package: b64, last_resort: z.boolean() })),
});

export const Health = z.object({ ok: z.literal(true) });
export const Ready = z.object({ ready: z.boolean() });

/** An optional `ref`, echoed from the frame a reply answers. */
const ref = z.union([z.string(), z.number()]).optional();

/** Every frame the relay sends over a WebSocket, by its `t`. */
export const SERVER_FRAMES = {
  hello: z.object({
    t: z.literal("hello"),
    nonce: b64,
    version: z.number().int(),
    server: z.string(),
    limits: Limits,
    /** True on the sealed socket (`/v1/sealed/ws`), which takes no auth. */
    sealed: z.boolean().optional(),
  }),
  ready: z.object({ t: z.literal("ready"), account: keyId, device: keyId }),
  msg: Message.extend({ t: z.literal("msg") }),
  /** Replay to a `sub` with `batch: true` (feature `batched_replay`): many messages a frame. */
  msgs: z.object({ t: z.literal("msgs"), group: groupId, messages: z.array(Message) }),
  synced: z.object({ t: z.literal("synced"), group: groupId, seq: z.number().int() }),
  sent: z.object({
    t: z.literal("sent"),
    ref,
    group: groupId,
    seq: z.number().int().optional(),
    created_at: time.optional(),
    expires_at: time.nullable().optional(),
    delivered: z.number().int().optional(),
  }),
  eph: z.object({
    t: z.literal("eph"),
    group: groupId,
    from: z.object({ account: keyId, device: keyId }),
    body: b64,
    to: z.array(keyId).optional(),
  }),
  presence: z.object({
    t: z.literal("presence"),
    ref,
    group: groupId,
    online: z.union([z.array(keyId), z.boolean()]),
    device: keyId.optional(),
  }),
  group: z.object({
    t: z.literal("group"),
    group: groupId,
    event: z.enum(["member_added", "member_removed", "role_changed", "deleted", "member_accepted"]),
    account: keyId,
  }),
  accepted: z.object({ t: z.literal("accepted"), ref, group: groupId }),
  pong: z.object({ t: z.literal("pong"), ref }),
  error: z.object({
    t: z.literal("error"),
    ref,
    code: ErrorBody.shape.error.shape.code,
    message: z.string(),
    retry_after_ms: z.number().int().nonnegative().optional(),
  }),
} as const;

/**
 * @module
 * Every HTTP route of the relay as data: method, path, who may call it, the zod schema its
 * handler validates the body with (the same object, imported from `relay/protocol.ts`), the
 * answers it gives (schemas from `responses.ts`) and one worked example. `openapi.ts` turns this
 * table into the OpenAPI document; `tests/relay/api/openapi_test.ts` fails when a route of the
 * app is missing here or a row here has no route, and replays every example against a relay.
 * A new route is one new row.
 */

import { z } from "zod";
import {
  AckBody,
  ClaimKeysBody,
  CreateBlobBody,
  CreateGroupBody,
  LoginBody,
  PutCapabilityBody,
  PutKeysBody,
  PutMemberBody,
  RegisterBody,
  SealedSendBody,
  SendBody,
} from "../protocol.ts";
import { PushTargetBody } from "../push/targets.ts";
import { FEATURES, NAME, VERSION } from "../base/version.ts";
import * as R from "./responses.ts";

/** Who may call a route. */
export type Access = "public" | "bearer" | "signed_url" | "metrics";

/** One answer of a route; no schema means no body. */
export type Answer = { description: string; schema?: z.ZodType; contentType?: string };

/** A query parameter. */
export type QueryParam = { name: string; description: string; schema: z.ZodType };

/** One route of the HTTP API. */
export type Operation = {
  method: "get" | "post" | "put" | "delete";
  /** Hono's path syntax (`/v1/groups/:id`). */
  path: string;
  id: string;
  tag: string;
  summary: string;
  access: Access;
  body?: z.ZodType;
  query?: QueryParam[];
  /** Successful answers by status; error statuses by the codes they may carry. */
  answers: Record<number, Answer>;
  errors?: number[];
  /** A worked example: the request body or query and the answer it gets. */
  example?: { body?: unknown; query?: Record<string, string>; status: number; answer?: unknown };
};

// Example identities (real Ed25519 keys and a real certificate, for realism only).
const ACCOUNT = "_ZyVIyUBAXumd96pSyYuWhQ3Gc-KgUjgYGoClxhEPxU";
const OTHER = "QXZIemMrnAaDsA0wCMzJC4GwEbyIzQ-nuvSESbTYIKo";
const CERT =
  "U96t2cb_xKE2al0mEaGKn9ZvRH-iLN6XTnSqOsbeo56Nsy47I-GFc3oN2Fn1g5M98Y_ETZmfVjy5H2P56UgJAw";
const NONCE = "3q2-7wAAAAAa7bJ0y9Vd1WkFQm6uVbZ0mJt0y4FVqCg";
const TOKEN = "Xk0y3FvQn9rJ2wB8tLmZcD5eH7aP1sU4iG6oR0vY2xE";
const GROUP = "Yq3b9xW2nL7tK1vM8pR4sA";
/** An example send capability (32 bytes of 7) and its verifier, SHA-256 in base64url. */
const CAP = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";
const CAP_VERIFIER = "S7Bvjk46dxXSAdVz0KpCN2LlXavWGiwCJ4-lbMbSlOA";
const T = 1_796_000_000_000;

const group = {
  id: GROUP,
  members: [{ account: ACCOUNT, role: "owner", added_at: T, state: "accepted" }],
  retention_s: 2_592_000,
  last_seq: 0,
  created_at: T,
};
const byteCount = (n: number) => ({ count: n, per_s: 60 });

const success = (description: string, schema?: z.ZodType): Answer => ({ description, schema });

/** The routes, in the order the example replay walks them (destructive calls last). */
export const OPERATIONS: Operation[] = [
  {
    method: "get",
    path: "/healthz",
    id: "healthz",
    tag: "server",
    summary: "Liveness: 200 while the process runs",
    access: "public",
    answers: { 200: success("The process runs", R.Health) },
    example: { status: 200, answer: { ok: true } },
  },
  {
    method: "get",
    path: "/readyz",
    id: "readyz",
    tag: "server",
    summary: "Readiness: the database answers and is migrated, and the relay is not draining",
    access: "public",
    answers: {
      200: success("Ready for traffic", R.Ready),
      503: success("Not ready (database down, not migrated, or draining)", R.Ready),
    },
    example: { status: 200, answer: { ready: true } },
  },
  {
    method: "get",
    path: "/metrics",
    id: "metrics",
    tag: "server",
    summary: "Prometheus metrics; needs `Bearer SEALPOST_METRICS_TOKEN` when that is set",
    access: "metrics",
    answers: {
      200: { description: "Prometheus text format", contentType: "text/plain" },
    },
    errors: [401],
    example: { status: 200 },
  },
  {
    method: "get",
    path: "/v1/info",
    id: "info",
    tag: "server",
    summary: "Server name, version, registration mode, limits, push services and features",
    access: "public",
    answers: { 200: success("Server information", R.Info) },
    example: {
      status: 200,
      answer: {
        name: NAME,
        version: VERSION,
        registration: "open",
        limits: {
          max_message_bytes: 65536,
          max_blob_bytes: 104857600,
          max_group_members: 1000,
          max_groups_per_account: 10000,
          max_connections_per_device: 5,
          max_ttl_s: 31536000,
          default_retention_s: 2592000,
          rate_send: byteCount(100),
          rate_send_burst: 20,
          rate_poll: byteCount(200),
          rate_auth: byteCount(30),
          rate_claim: byteCount(60),
          claim_per_target: { count: 30, per_s: 3600 },
        },
        privacy: { presence: true, last_seen_granularity_s: 3600 },
        push: { unifiedpush: true, apns: false, fcm: false },
        features: [...FEATURES],
      },
    },
  },
  {
    method: "get",
    path: "/v1/openapi.json",
    id: "openapi",
    tag: "server",
    summary: "This document (OpenAPI 3.1)",
    access: "public",
    answers: { 200: { description: "The OpenAPI document", contentType: "application/json" } },
    example: { status: 200 },
  },
  {
    method: "get",
    path: "/v1/asyncapi.json",
    id: "asyncapi",
    tag: "server",
    summary: "The WebSocket frames of `/v1/ws` (AsyncAPI 3.0)",
    access: "public",
    answers: { 200: { description: "The AsyncAPI document", contentType: "application/json" } },
    example: { status: 200 },
  },
  {
    method: "post",
    path: "/v1/auth/challenge",
    id: "challenge",
    tag: "auth",
    summary: "A single-use nonce to sign for register or login (valid 5 minutes)",
    access: "public",
    answers: { 200: success("A fresh nonce", R.Challenge) },
    errors: [429],
    example: { status: 200, answer: { nonce: NONCE, expires_at: T + 300_000 } },
  },
  {
    method: "post",
    path: "/v1/auth/register",
    id: "register",
    tag: "auth",
    summary: "Register a device of an account (201 new, 200 already known) and get a token",
    access: "public",
    body: RegisterBody,
    answers: {
      201: success("A new device", R.Registered),
      200: success("A device already registered under this account: a new token", R.Registered),
    },
    errors: [400, 401, 403, 409, 429],
    example: {
      body: {
        account: ACCOUNT,
        device: ACCOUNT,
        cert: CERT,
        nonce: NONCE,
        sig: CERT,
        name: "Ada's phone",
        platform: "ios",
      },
      status: 201,
      answer: { token: TOKEN, expires_at: T + 86_400_000, account: ACCOUNT, device: ACCOUNT },
    },
  },
  {
    method: "post",
    path: "/v1/auth/login",
    id: "login",
    tag: "auth",
    summary: "A new token for a registered device",
    access: "public",
    body: LoginBody,
    answers: { 200: success("A new token", R.Token) },
    errors: [400, 401, 403, 429],
    example: {
      body: { device: ACCOUNT, nonce: NONCE, sig: CERT },
      status: 200,
      answer: { token: TOKEN, expires_at: T + 86_400_000 },
    },
  },
  {
    method: "post",
    path: "/v1/groups",
    id: "createGroup",
    tag: "groups",
    summary: "Create a group; the caller's account is its owner",
    access: "bearer",
    body: CreateGroupBody,
    answers: { 201: success("The new group", R.Group) },
    errors: [400, 404, 409],
    example: { body: { retention_s: 2_592_000 }, status: 201, answer: group },
  },
  {
    method: "get",
    path: "/v1/groups",
    id: "listGroups",
    tag: "groups",
    summary: "The caller's groups, oldest first, with the device's acknowledged `cursor`",
    access: "bearer",
    answers: { 200: success("The groups", R.GroupList) },
    example: { status: 200, answer: { groups: [{ ...group, cursor: 0 }] } },
  },
  {
    method: "get",
    path: "/v1/groups/:id",
    id: "getGroup",
    tag: "groups",
    summary: "One group (404 for non-members, as for a group that does not exist)",
    access: "bearer",
    answers: { 200: success("The group", R.Group) },
    errors: [404],
    example: { status: 200, answer: group },
  },
  {
    method: "put",
    path: "/v1/groups/:id/members/:account",
    id: "putMember",
    tag: "groups",
    summary: "Add an account (as `member` by default) or set its role",
    access: "bearer",
    body: PutMemberBody,
    answers: { 200: success("The group", R.Group) },
    errors: [400, 403, 404, 409],
    example: {
      body: { role: "admin" },
      status: 200,
      answer: {
        ...group,
        members: [
          ...group.members,
          { account: OTHER, role: "admin", added_at: T, state: "invited" },
        ],
      },
    },
  },
  {
    method: "post",
    path: "/v1/groups/:id/accept",
    id: "acceptGroup",
    tag: "groups",
    summary: "Accept the caller's invitation (idempotent; 404 for non-members)",
    access: "bearer",
    answers: { 200: success("The group", R.Group) },
    errors: [404, 409],
    example: { status: 200, answer: group },
  },
  {
    method: "put",
    path: "/v1/groups/:id/send_capability",
    id: "setSendCapability",
    tag: "groups",
    summary: "Set the group's send capability for sealed sends: its SHA-256 (any member)",
    access: "bearer",
    body: PutCapabilityBody,
    answers: { 204: success("Stored; the previous capability no longer works") },
    errors: [400, 404],
    example: { body: { verifier: CAP_VERIFIER }, status: 204 },
  },
  {
    method: "delete",
    path: "/v1/groups/:id/send_capability",
    id: "clearSendCapability",
    tag: "groups",
    summary: "Remove the group's send capability: sealed sends are refused",
    access: "bearer",
    answers: { 204: success("Removed") },
    errors: [404],
    example: { status: 204 },
  },
  {
    method: "post",
    path: "/v1/sealed/groups/:id/messages",
    id: "sealedSend",
    tag: "messages",
    summary: "Send without a sender, with the group's send capability instead of a token",
    access: "public",
    body: SealedSendBody,
    answers: {
      201: success("Stored with its seq, without a sender", R.Sent),
      200: success("A repeat of an earlier client_id in this group: the original answer", R.Sent),
    },
    errors: [400, 404, 413, 429, 503],
    example: {
      body: { client_id: "s-0001", body: "c2VhbGVkIGNpcGhlcnRleHQ", cap: CAP },
      status: 201,
      answer: { seq: 1, created_at: T, expires_at: T + 2_592_000_000 },
    },
  },
  {
    method: "get",
    path: "/v1/sealed/ws",
    id: "sealedWebsocket",
    tag: "messages",
    summary: "Upgrade to the sealed WebSocket: `send` (with `cap`) and `ping` frames, no auth",
    access: "public",
    answers: { 101: { description: "Switching protocols; the relay sends `hello` first" } },
    errors: [400, 503],
    example: { status: 101 },
  },
  {
    method: "post",
    path: "/v1/groups/:id/messages",
    id: "send",
    tag: "messages",
    summary: "Send a message (201 stored, 200 a repeated client_id, 202 ephemeral)",
    access: "bearer",
    body: SendBody,
    answers: {
      201: success("Stored with its seq", R.Sent),
      200: success("A repeat of an earlier client_id: the original answer", R.Sent),
      202: success("Ephemeral: relayed to connected devices, not stored", R.Delivered),
    },
    errors: [400, 404, 413, 429, 503],
    example: {
      body: { client_id: "m-0001", body: "c2VhbGVkIGNpcGhlcnRleHQ", ttl_s: 86_400 },
      status: 201,
      answer: { seq: 1, created_at: T, expires_at: T + 86_400_000 },
    },
  },
  {
    method: "get",
    path: "/v1/groups/:id/messages",
    id: "readGroup",
    tag: "messages",
    summary: "A page of a group's messages after `after`, lowest seq first",
    access: "bearer",
    query: [
      {
        name: "after",
        description: "Return messages with seq above this (default 0)",
        schema: int(0),
      },
      { name: "limit", description: "Page size, 1–1000 (default 100)", schema: int(1, 1000) },
    ],
    answers: { 200: success("The page", R.Page) },
    errors: [400, 404],
    example: {
      query: { after: "0", limit: "100" },
      status: 200,
      answer: {
        messages: [{
          group: GROUP,
          seq: 1,
          from: { account: ACCOUNT, device: ACCOUNT },
          created_at: T,
          expires_at: T + 86_400_000,
          body: "c2VhbGVkIGNpcGhlcnRleHQ",
        }],
        last_seq: 1,
        has_more: false,
      },
    },
  },
  {
    method: "get",
    path: "/v1/inbox",
    id: "inbox",
    tag: "messages",
    summary: "Messages after the device's cursors across its groups; `wait` long-polls",
    access: "bearer",
    query: [
      {
        name: "wait",
        description: "Seconds to wait for a message, 0–30 (default 0)",
        schema: int(0, 30),
      },
      {
        name: "limit",
        description: "At most this many, 1–1000 (default 100)",
        schema: int(1, 1000),
      },
    ],
    answers: { 200: success("Unacknowledged messages", R.Inbox) },
    errors: [400, 429],
    example: { query: { wait: "0" }, status: 200, answer: { messages: [] } },
  },
  {
    method: "post",
    path: "/v1/ack",
    id: "ack",
    tag: "messages",
    summary: "Move the device's cursors (never backwards, never past last_seq)",
    access: "bearer",
    body: AckBody,
    answers: { 204: success("The cursors are stored") },
    errors: [400, 404],
    example: { body: { cursors: { [GROUP]: 1 } }, status: 204 },
  },
  {
    method: "get",
    path: "/v1/ws",
    id: "websocket",
    tag: "messages",
    summary: "Upgrade to the WebSocket session described by `/v1/asyncapi.json`",
    access: "public",
    answers: { 101: { description: "Switching protocols; the relay sends `hello` first" } },
    errors: [400, 503],
    example: { status: 101 },
  },
  {
    method: "post",
    path: "/v1/blobs",
    id: "createBlob",
    tag: "blobs",
    summary: "Declare a blob by size and SHA-256 and get its upload URL",
    access: "bearer",
    body: CreateBlobBody,
    answers: { 201: success("The blob id and a signed upload request", R.CreatedBlob) },
    errors: [400, 404, 413],
    example: {
      body: { group: GROUP, size: 5, sha256: "LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ" },
      status: 201,
      answer: {
        id: "b_4kT9wZq2LxV7mN1pR8sYc3",
        upload: {
          url:
            "https://relay.example.net/v1/blobs/b_4kT9wZq2LxV7mN1pR8sYc3/data?exp=1796000900000&sig=…",
          method: "PUT",
          headers: { "content-length": "5" },
        },
        expires_at: T + 900_000,
      },
    },
  },
  {
    method: "put",
    path: "/v1/blobs/:id/data",
    id: "uploadBlob",
    tag: "blobs",
    summary: "Filesystem store only: the signed upload URL (the signature is the permission)",
    access: "signed_url",
    query: signedQuery(),
    answers: { 204: success("Stored (size and SHA-256 matched)") },
    errors: [400, 403, 404, 413],
    example: { status: 204 },
  },
  {
    method: "get",
    path: "/v1/blobs/:id",
    id: "downloadBlob",
    tag: "blobs",
    summary: "302 to a short-lived signed download URL (group members only)",
    access: "bearer",
    answers: { 302: success("`Location` is the signed download URL") },
    errors: [404],
    example: { status: 302 },
  },
  {
    method: "get",
    path: "/v1/blobs/:id/data",
    id: "readBlob",
    tag: "blobs",
    summary: "Filesystem store only: the signed download URL",
    access: "signed_url",
    query: signedQuery(),
    answers: {
      200: { description: "The stored ciphertext", contentType: "application/octet-stream" },
    },
    errors: [403, 404],
    example: { status: 200 },
  },
  {
    method: "put",
    path: "/v1/devices/me/keys",
    id: "putKeyPackages",
    tag: "key packages",
    summary: "Upload one-time key packages (≤ 100 a call) and an optional last resort",
    access: "bearer",
    body: PutKeysBody,
    answers: { 204: success("Stored (all or nothing)") },
    errors: [400, 409, 413],
    example: {
      body: { kind: "mls", packages: ["a2V5LXBhY2thZ2UtMQ"], last_resort: "bGFzdC1yZXNvcnQ" },
      status: 204,
    },
  },
  {
    method: "get",
    path: "/v1/devices/me/keys",
    id: "keyPackageCounts",
    tag: "key packages",
    summary: "How many packages the device has left, per kind",
    access: "bearer",
    answers: { 200: success("Counts per kind", R.KeyCounts) },
    example: { status: 200, answer: { kinds: { mls: { available: 1, last_resort: true } } } },
  },
  {
    method: "post",
    path: "/v1/accounts/:account/keys/claim",
    id: "claimKeyPackages",
    tag: "key packages",
    summary: "Take one package of each active device of an account (rate limited per caller)",
    access: "bearer",
    body: ClaimKeysBody,
    answers: { 200: success("One package per device that has one", R.Claimed) },
    errors: [400, 404, 429],
    example: {
      body: { kind: "mls" },
      status: 200,
      answer: { packages: [{ device: OTHER, package: "a2V5LXBhY2thZ2UtMQ", last_resort: false }] },
    },
  },
  {
    method: "get",
    path: "/v1/accounts/:account/devices",
    id: "listDevices",
    tag: "devices",
    summary: "An account's devices, to its own devices and to accounts sharing a group",
    access: "bearer",
    answers: { 200: success("The devices, oldest first", R.DeviceList) },
    errors: [404],
    example: {
      status: 200,
      answer: {
        devices: [{
          id: ACCOUNT,
          cert: CERT,
          name: "Ada's phone",
          platform: "ios",
          created_at: T,
          last_seen_at: T,
          status: "active",
        }],
      },
    },
  },
  {
    method: "put",
    path: "/v1/devices/me/push",
    id: "putPushTarget",
    tag: "devices",
    summary: "Register the device's one push target (replaces an earlier one)",
    access: "bearer",
    body: PushTargetBody,
    answers: { 204: success("Stored") },
    errors: [400],
    example: {
      body: { kind: "unifiedpush", endpoint: "https://ntfy.example.net/upAbC123" },
      status: 204,
    },
  },
  {
    method: "delete",
    path: "/v1/devices/me/push",
    id: "deletePushTarget",
    tag: "devices",
    summary: "Remove the device's push target (204 also when there was none)",
    access: "bearer",
    answers: { 204: success("Removed") },
    example: { status: 204 },
  },
  {
    method: "delete",
    path: "/v1/groups/:id/members/:account",
    id: "removeMember",
    tag: "groups",
    summary: "Remove a member (owner/admin), or leave (the account itself)",
    access: "bearer",
    answers: { 204: success("Removed") },
    errors: [403, 404, 409],
    example: { status: 204 },
  },
  {
    method: "delete",
    path: "/v1/groups/:id",
    id: "deleteGroup",
    tag: "groups",
    summary: "Delete a group with its messages and blobs (owner)",
    access: "bearer",
    answers: { 204: success("Deleted") },
    errors: [403, 404],
    example: { status: 204 },
  },
  {
    method: "delete",
    path: "/v1/devices/:device",
    id: "revokeDevice",
    tag: "devices",
    summary: "Revoke a device of the caller's own account (the caller itself too)",
    access: "bearer",
    answers: { 204: success("Revoked; its connections close with 4003") },
    errors: [404],
    example: { status: 204 },
  },
];

function int(min: number, max?: number): z.ZodType {
  const n = z.number().int().min(min);
  return max === undefined ? n : n.max(max);
}

function signedQuery(): QueryParam[] {
  return [
    { name: "exp", description: "Expiry of the signature (ms since the epoch)", schema: int(0) },
    { name: "sig", description: "The relay's HMAC signature (base64url)", schema: z.string() },
  ];
}

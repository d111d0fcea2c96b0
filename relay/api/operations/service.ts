/**
 * @module
 * Rows of the route table (`mod.ts`): the relay itself (health, readiness, metrics, info, the API documents) and authentication.
 */

import { LoginBody, RegisterBody } from "../../protocol.ts";
import { FEATURES, NAME, VERSION } from "../../base/version.ts";
import * as R from "../responses.ts";
import { type Operation, success } from "./types.ts";
import { ACCOUNT, byteCount, CERT, NONCE, T, TOKEN } from "./examples.ts";

/** Rows in the order the example replay walks them. */
export const SERVICE_OPERATIONS: Operation[] = [
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
];

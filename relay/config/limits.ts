/**
 * @module
 * The limits a client sees in `hello` and `GET /v1/info` (PROTOCOL.md "Limits and rate limits").
 */

import { type Config, parseRate, type Rate } from "./config.ts";
import type { RuntimeValues } from "./runtime.ts";

/** JSON API bodies may be this many times `max_message_bytes` (base64url and JSON around it). */
export const API_BODY_FACTOR = 8;

/** The largest JSON body a `/v1/` route reads (`max_body_bytes`). */
export function apiBodyBytes(config: Config): number {
  return Math.max(64 * 1024, API_BODY_FACTOR * config.maxMessageBytes);
}

/** A rate as the wire shows it: `{count, per_s}` or `null` when disabled. */
export type WireRate = { count: number; per_s: number } | null;

function wireRate(rate: Rate): WireRate {
  return rate ? { count: rate.count, per_s: rate.perMs / 1000 } : null;
}

/**
 * The limits object of `hello` and `/v1/info`; with `runtime` (the run-time settings), the rate
 * limits and default retention an admin set win over the configuration's.
 */
export function publicLimits(config: Config, runtime?: RuntimeValues) {
  const rate = (configured: Rate, key: keyof RuntimeValues) =>
    wireRate(runtime ? parseRate(String(runtime[key])) : configured);
  return {
    max_message_bytes: config.maxMessageBytes,
    max_blob_bytes: config.maxBlobBytes,
    max_body_bytes: apiBodyBytes(config),
    max_account_bytes: config.maxAccountBytes,
    max_group_members: config.maxGroupMembers,
    max_groups_per_account: config.maxGroupsPerAccount,
    max_connections_per_device: config.maxConnectionsPerDevice,
    max_ttl_s: config.maxTtl === null ? null : Math.floor(config.maxTtl / 1000),
    default_retention_s: runtime?.retention_s ?? Math.floor(config.retention / 1000),
    rate_send: rate(config.rateSend, "rate_send"),
    rate_send_burst: config.sendBurst,
    rate_poll: rate(config.ratePoll, "rate_poll"),
    rate_auth: rate(config.rateAuth, "rate_auth"),
    rate_claim: rate(config.rateClaim, "rate_claim"),
    claim_per_target: wireRate(config.claimPerTarget),
  };
}

/** The limits object of `hello` and `/v1/info`. */
export type PublicLimits = ReturnType<typeof publicLimits>;

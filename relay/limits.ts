/**
 * @module
 * The limits a client sees in `hello` and `GET /v1/info` (PROTOCOL.md "Limits and rate limits").
 */

import type { Config, Rate } from "./config.ts";

/** A rate as the wire shows it: `{count, per_s}` or `null` when disabled. */
export type WireRate = { count: number; per_s: number } | null;

function wireRate(rate: Rate): WireRate {
  return rate ? { count: rate.count, per_s: rate.perMs / 1000 } : null;
}

/** The limits object of `hello` and `/v1/info`. */
export function publicLimits(config: Config) {
  return {
    max_message_bytes: config.maxMessageBytes,
    max_blob_bytes: config.maxBlobBytes,
    max_group_members: config.maxGroupMembers,
    max_groups_per_account: config.maxGroupsPerAccount,
    max_connections_per_device: config.maxConnectionsPerDevice,
    max_ttl_s: config.maxTtl === null ? null : Math.floor(config.maxTtl / 1000),
    default_retention_s: Math.floor(config.retention / 1000),
    rate_send: wireRate(config.rateSend),
    rate_send_burst: config.sendBurst,
    rate_poll: wireRate(config.ratePoll),
    rate_auth: wireRate(config.rateAuth),
    rate_claim: wireRate(config.rateClaim),
  };
}

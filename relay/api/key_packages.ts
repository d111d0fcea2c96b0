/**
 * @module
 * Routes of PROTOCOL.md "Key packages": upload (`PUT /v1/devices/me/keys`), counts
 * (`GET /v1/devices/me/keys`) and claim (`POST /v1/accounts/:account/keys/claim`, rate limited
 * per calling device by `SEALPOST_RATE_CLAIM`, one-time packages handed out per claimed device
 * by `SEALPOST_CLAIM_PER_TARGET`).
 */

import { Hono } from "hono";
import { parseRate } from "../config/config.ts";
import type { Deps } from "../deps.ts";
import { claimKeyPackages, keyPackageCounts, putKeyPackages } from "../accounts/key_packages.ts";
import { ClaimKeysBody, keyId, PutKeysBody } from "../protocol.ts";
import { RateLimiter } from "../rate_limit.ts";
import { type ApiEnv, type Auth, pathParam, readBody } from "./context.ts";

/** The key-package routes (mounted under `/v1`). */
export function keyPackageRoutes(deps: Deps, auth: Auth): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  // Keyed by the calling device; an admin's change of rate_claim applies without a restart.
  const claimLimit = new RateLimiter(
    deps.config.rateClaim,
    undefined,
    deps.clock,
    () => deps.metrics.rateLimited.inc({ limit: "claim" }),
  );
  deps.settings.onChange((values) => claimLimit.setRate(parseRate(values.rate_claim)));
  // Keyed by the claimed device and kind (SEALPOST_CLAIM_PER_TARGET): many callers together
  // still get only so many of one device's one-time packages.
  const perTarget = new RateLimiter(deps.config.claimPerTarget, undefined, deps.clock);

  app.put("/devices/me/keys", auth, async (c) => {
    const body = await readBody(c, PutKeysBody);
    await putKeyPackages(deps, c.get("principal").device, body);
    return c.body(null, 204);
  });

  app.get("/devices/me/keys", auth, async (c) => {
    return c.json({ kinds: await keyPackageCounts(deps, c.get("principal").device) });
  });

  app.post("/accounts/:account/keys/claim", auth, async (c) => {
    // Before anything else, so probing unknown accounts costs the same tokens as claiming.
    claimLimit.check(c.get("principal").device, "key-package claims");
    const body = await readBody(c, ClaimKeysBody);
    const account = pathParam(c, "account", keyId, "account");
    const packages = await claimKeyPackages(deps, account, body.kind, perTarget);
    deps.log.debug("key packages claimed", {
      account,
      kind: body.kind,
      count: packages.length,
      by: c.get("principal").device,
    });
    return c.json({ packages });
  });

  return app;
}

/**
 * @module
 * Routes of PROTOCOL.md "Device directory": list an account's devices, revoke one's own device.
 */

import { Hono } from "hono";
import type { Deps } from "../deps.ts";
import { listDevices, revokeDevice } from "../accounts/devices.ts";
import { notFound } from "../errors.ts";
import { keyId } from "../protocol.ts";
import { type ApiEnv, type Auth, pathParam } from "./context.ts";

/** Hooks the device routes call into the live parts of the relay. */
export type DeviceHooks = { onRevoked(device: string): Promise<void> };

/** The device directory routes (mounted under `/v1`). */
export function deviceRoutes(deps: Deps, auth: Auth, hooks: DeviceHooks): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.get("/accounts/:account/devices", auth, async (c) => {
    const account = pathParam(c, "account", keyId, "account");
    const devices = await listDevices(deps, c.get("principal").account, account);
    return c.json({ devices });
  });
  app.delete("/devices/:device", auth, async (c) => {
    if (c.req.param("device") === "me") {
      throw notFound("Use DELETE /v1/devices/me/push for push targets");
    }
    const device = pathParam(c, "device", keyId, "device in your account");
    await revokeDevice(deps, c.get("principal").account, device);
    await hooks.onRevoked(device);
    deps.log.info("device revoked", { device, by: c.get("principal").device });
    return c.body(null, 204);
  });
  return app;
}

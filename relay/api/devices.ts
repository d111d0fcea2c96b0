/**
 * @module
 * Routes of PROTOCOL.md "Device directory": list an account's devices, revoke one's own device.
 */

import { Hono } from "hono";
import type { Deps } from "../deps.ts";
import { listDevices, revokeDevice } from "../accounts/devices.ts";
import { notFound } from "../errors.ts";
import { isKeyId } from "../base/keys.ts";
import type { ApiEnv, Auth } from "./context.ts";

/** Hooks the device routes call into the live parts of the relay. */
export type DeviceHooks = { onRevoked(device: string): Promise<void> };

/** The device directory routes (mounted under `/v1`). */
export function deviceRoutes(deps: Deps, auth: Auth, hooks: DeviceHooks): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.get("/accounts/:account/devices", auth, async (c) => {
    const account = c.req.param("account");
    if (!isKeyId(account)) throw notFound("No such account");
    const devices = await listDevices(deps, c.get("principal").account, account);
    return c.json({ devices });
  });
  app.delete("/devices/:device", auth, async (c) => {
    const device = c.req.param("device");
    if (device === "me") throw notFound("Use DELETE /v1/devices/me/push for push targets");
    if (!isKeyId(device)) throw notFound("No such device in your account");
    await revokeDevice(deps, c.get("principal").account, device);
    await hooks.onRevoked(device);
    deps.log.info("device revoked", { device, by: c.get("principal").device });
    return c.body(null, 204);
  });
  return app;
}

/**
 * @module
 * Routes of PROTOCOL.md "Device directory" for push: `PUT /v1/devices/me/push` registers the
 * caller's one push target (`204`), `DELETE /v1/devices/me/push` removes it (`204`, also when
 * there was none). A provider this relay has not configured answers `400 invalid_request`
 * naming what is missing.
 */

import { Hono } from "hono";
import type { PushService } from "../push/service.ts";
import { PushTargetBody } from "../push/targets.ts";
import { type ApiEnv, type Auth, readBody } from "./context.ts";

/** The push target routes (mounted under `/v1`). */
export function pushRoutes(push: PushService, auth: Auth): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.put("/devices/me/push", auth, async (c) => {
    const body = await readBody(c, PushTargetBody);
    await push.setTarget(c.get("principal").device, body);
    return c.body(null, 204);
  });
  app.delete("/devices/me/push", auth, async (c) => {
    await push.deleteTarget(c.get("principal").device);
    return c.body(null, 204);
  });
  return app;
}

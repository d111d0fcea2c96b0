/**
 * @module
 * Routes of PROTOCOL.md "Authentication": challenge, register, login. Every call counts
 * against the per-IP auth rate limit.
 */

import { Hono } from "hono";
import { createChallenge, login, register } from "../authenticate.ts";
import type { Deps } from "../deps.ts";
import { LoginBody, RegisterBody } from "../protocol.ts";
import type { RateLimiter } from "../rate_limit.ts";
import { type ApiEnv, clientIp, readBody } from "./context.ts";

/** The `/v1/auth` routes. */
export function authRoutes(deps: Deps, authLimit: RateLimiter): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.use("*", async (c, next) => {
    authLimit.check(clientIp(c), "authentication attempts");
    await next();
  });
  app.post("/challenge", async (c) => c.json(await createChallenge(deps), 200));
  app.post("/register", async (c) => {
    const body = await readBody(c, RegisterBody);
    const result = await register(deps, body);
    const { created, ...answer } = result;
    deps.log.info("device registered", { device: answer.device, created });
    return c.json(answer, created ? 201 : 200);
  });
  app.post("/login", async (c) => {
    const body = await readBody(c, LoginBody);
    return c.json(await login(deps, body), 200);
  });
  return app;
}

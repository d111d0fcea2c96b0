/**
 * @module
 * Every HTTP body is capped while it is read, never after: a `Content-Length` over the route's
 * limit is refused before a byte of the body is read, and a chunked body is counted as it
 * arrives and refused the moment it passes the limit (Hono's `bodyLimit`). Over it →
 * `413 too_large`. The limits: JSON API bodies under `/v1/` at `max_body_bytes` (8 times
 * `max_message_bytes`, `config/limits.ts`); admin forms at {@link ADMIN_FORM_BYTES}; the relay's own blob upload
 * route streams to disk and stops at the blob's declared size (`blobs/fs.ts`), so it is left to
 * that check here.
 */

import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Config } from "../config/config.ts";
import { apiBodyBytes } from "../config/limits.ts";
import { RelayError } from "../errors.ts";
import type { ApiEnv } from "./context.ts";

/** Admin forms (a password, a setting, an invite) are small. */
export const ADMIN_FORM_BYTES = 8 * 1024;

/** The blob data route, whose body is capped by the blob's declared size instead. */
const BLOB_DATA = /^\/v1\/blobs\/[^/]+\/data$/;

function limit(maxSize: number): MiddlewareHandler<ApiEnv> {
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new RelayError("too_large", `The body is larger than this route's ${maxSize} bytes`);
    },
  });
}

/**
 * The size caps, as middleware for the whole app (mounted before any route).
 *
 * @example
 * ```ts
 * app.use("*", bodyLimits(config));
 * ```
 */
export function bodyLimits(config: Config): MiddlewareHandler<ApiEnv> {
  const api = limit(apiBodyBytes(config));
  const form = limit(ADMIN_FORM_BYTES);
  return async (c, next) => {
    const path = c.req.path;
    if (path.startsWith("/v1/")) {
      if (c.req.method === "PUT" && BLOB_DATA.test(path)) return await next();
      return await api(c, next);
    }
    return await form(c, next);
  };
}

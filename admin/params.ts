/**
 * @module
 * Path parameters of the dashboard's pages, validated with the protocol's zod schemas before
 * any query: an id that cannot be valid (a NUL from `%00`, a wrong length) names nothing, so it
 * reads as the empty id, which every lookup answers "not found" — the page's own 404.
 */

import type { Context } from "hono";
import type { z } from "zod";
import type { AdminEnv } from "./types.ts";

/**
 * The path parameter `name` when `schema` accepts it, else `""` (matches no row).
 *
 * @example
 * ```ts
 * const device = await deviceDetail(deps, idParam(c, "id", keyId));
 * ```
 */
export function idParam(c: Context<AdminEnv>, name: string, schema: z.ZodType<string>): string {
  const value = c.req.param(name) ?? "";
  return schema.safeParse(value).success ? value : "";
}

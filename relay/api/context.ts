/**
 * @module
 * Shared pieces of the HTTP API: the Hono environment type, JSON body reading that turns a
 * malformed or out-of-bounds body (too deep, too wide, NUL in a string) into
 * `400 invalid_request`, and the bearer-token middleware. Body sizes are capped before this
 * reads anything (`body_limit.ts`).
 */

import type { Context, MiddlewareHandler } from "hono";
import type { z } from "zod";
import { authenticateToken, type Principal } from "../authenticate.ts";
import type { Deps } from "../deps.ts";
import { invalid, notFound, RelayError } from "../errors.ts";
import { parse } from "../protocol.ts";
import { jsonProblem } from "../base/json.ts";
import { UNKNOWN_ADDRESS } from "./client_address.ts";

/** Variables handlers may read from the context. */
export type ApiEnv = {
  /** `clientIp`: the client's address ({@link clientAddress}), set first on every request. */
  Variables: { principal: Principal; requestId: string; clientIp: string };
  Bindings: { remoteAddr?: Deno.NetAddr };
};

/** Reads and validates a JSON body against `schema`. */
export async function readBody<T extends z.ZodType>(
  c: Context<ApiEnv>,
  schema: T,
): Promise<z.infer<T>> {
  let json: unknown;
  try {
    const text = await c.req.text();
    json = text.length === 0 ? {} : JSON.parse(text);
  } catch {
    throw invalid("The body is not valid JSON");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw invalid("The body must be a JSON object");
  }
  const problem = jsonProblem(json);
  if (problem) throw invalid(`The body is out of bounds: ${problem}`);
  return parse(schema, json);
}

/**
 * A path parameter validated by `schema`; one that cannot be valid (a NUL, the wrong length, a
 * stray `%2F`) names nothing, so it answers `404 not_found` ("No such <what>") like an id that
 * does not exist — and never reaches the database.
 *
 * @example
 * ```ts
 * const group = pathParam(c, "id", groupId, "group");
 * ```
 */
export function pathParam<T extends z.ZodType<string>>(
  c: Context<ApiEnv>,
  name: string,
  schema: T,
  what: string,
): z.infer<T> {
  const result = schema.safeParse(c.req.param(name));
  if (!result.success) throw notFound(`No such ${what}`);
  return result.data;
}

/**
 * The client's address: the socket's, or what a trusted proxy says (`SEALPOST_TRUSTED_PROXIES`,
 * see `client_address.ts`). Every per-address limit, the audit log and the admin use this.
 */
export function clientIp<E extends ApiEnv>(c: Context<E>): string {
  return (c as unknown as Context<ApiEnv>).get("clientIp") ?? c.env?.remoteAddr?.hostname ??
    UNKNOWN_ADDRESS;
}

/** The bearer-token middleware; routes list it so unknown paths still answer 404. */
export type Auth = MiddlewareHandler<ApiEnv>;

/** Requires `Authorization: Bearer <token>` and sets `principal`. */
export function requireDevice(deps: Deps): Auth {
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new RelayError("unauthenticated", "Missing bearer token");
    c.set("principal", await authenticateToken(deps, match[1]));
    await next();
  };
}

/**
 * @module
 * The shape of one row of the route table (`mod.ts`) and the small helpers the rows share.
 */

import { z } from "zod";

/** Who may call a route. */
export type Access = "public" | "bearer" | "signed_url" | "metrics";

/** One answer of a route; no schema means no body. */
export type Answer = { description: string; schema?: z.ZodType; contentType?: string };

/** A query parameter. */
export type QueryParam = { name: string; description: string; schema: z.ZodType };

/** One route of the HTTP API. */
export type Operation = {
  method: "get" | "post" | "put" | "delete";
  /** Hono's path syntax (`/v1/groups/:id`). */
  path: string;
  id: string;
  tag: string;
  summary: string;
  access: Access;
  body?: z.ZodType;
  query?: QueryParam[];
  /** Successful answers by status; error statuses by the codes they may carry. */
  answers: Record<number, Answer>;
  errors?: number[];
  /** A worked example: the request body or query and the answer it gets. */
  example?: { body?: unknown; query?: Record<string, string>; status: number; answer?: unknown };
};

/** A success answer with an optional body schema. */
export const success = (description: string, schema?: z.ZodType): Answer => ({
  description,
  schema,
});

export function int(min: number, max?: number): z.ZodType {
  const n = z.number().int().min(min);
  return max === undefined ? n : n.max(max);
}

export function signedQuery(): QueryParam[] {
  return [
    { name: "exp", description: "Expiry of the signature (ms since the epoch)", schema: int(0) },
    { name: "sig", description: "The relay's HMAC signature (base64url)", schema: z.string() },
  ];
}

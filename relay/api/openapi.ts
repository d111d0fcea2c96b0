/**
 * @module
 * Builds the OpenAPI 3.1 document served at `GET /v1/openapi.json` from the route table
 * (`operations/mod.ts`): request bodies are the zod schemas the handlers validate with, answers the
 * schemas of `responses.ts`, both turned into JSON Schema 2020-12 by zod's `toJSONSchema` (the
 * dialect OpenAPI 3.1 uses), so the document cannot drift from the validation. Every error
 * answer is the one error body of `relay/errors.ts`.
 */

import { z } from "zod";
import * as protocol from "../protocol.ts";
import { PushTargetBody } from "../push/targets.ts";
import { ERRORS } from "../errors.ts";
import { PROTOCOL_VERSION } from "../base/version.ts";
import * as responses from "./responses.ts";
import { type Operation, OPERATIONS } from "./operations/mod.ts";

/** JSON as the documents hold it. */
export type Json = Record<string, unknown>;

const REF = "#/components/schemas/";

/** Every named zod schema the documents may reference, by its export name. */
export function namedSchemas(): Map<z.ZodType, string> {
  const named = new Map<z.ZodType, string>();
  const add = (entries: [string, unknown][]) => {
    for (const [name, value] of entries) {
      if (value instanceof z.ZodType && !named.has(value)) named.set(value, upperFirst(name));
    }
  };
  add(Object.entries(protocol));
  add([["PushTargetBody", PushTargetBody]]);
  add(Object.entries(responses));
  return named;
}

function upperFirst(name: string): string {
  return name[0].toUpperCase() + name.slice(1);
}

/**
 * The JSON Schemas of `named` as `components.schemas`, with references between them as
 * `$ref`s. Input mode: objects stay open, as the relay ignores unknown request fields and
 * clients should ignore unknown answer fields.
 */
export function componentSchemas(
  named: Map<z.ZodType, string>,
  target: "draft-2020-12" | "draft-7" = "draft-2020-12",
): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [schema, id] of named) registry.add(schema, { id });
  const out = z.toJSONSchema(registry, {
    io: "input",
    target,
    unrepresentable: "any",
    uri: (id) => `${REF}${id}`,
  }) as { schemas: Record<string, Json> };
  for (const schema of Object.values(out.schemas)) {
    delete schema.$schema;
    delete schema.$id;
  }
  return out.schemas;
}

/** `/v1/groups/:id` → `/v1/groups/{id}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z_]+)/g, "{$1}");
}

function inlineSchema(schema: z.ZodType, named: Map<z.ZodType, string>): Json {
  const name = named.get(schema);
  if (name) return { $ref: `${REF}${name}` };
  const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Json;
  delete json.$schema;
  return json;
}

const PATH_PARAMS: Record<string, string> = {
  id: "A group id (22 base64url characters), or a blob id under /v1/blobs",
  account: "An account id (43 base64url characters)",
  device: "A device id (43 base64url characters)",
};

function operationObject(op: Operation, named: Map<z.ZodType, string>): Json {
  const parameters: Json[] = [];
  for (const [, name] of op.path.matchAll(/:([A-Za-z_]+)/g)) {
    parameters.push({
      name,
      in: "path",
      required: true,
      description: PATH_PARAMS[name] ?? name,
      schema: { type: "string" },
    });
  }
  for (const q of op.query ?? []) {
    const param: Json = {
      name: q.name,
      in: "query",
      required: op.access === "signed_url",
      description: q.description,
      schema: inlineSchema(q.schema, named),
    };
    if (op.example?.query?.[q.name] !== undefined) param.example = op.example.query[q.name];
    parameters.push(param);
  }
  const answers: Json = {};
  for (const [status, answer] of Object.entries(op.answers)) {
    const entry: Json = { description: answer.description };
    if (answer.schema) {
      const media: Json = { schema: inlineSchema(answer.schema, named) };
      if (op.example && op.example.status === Number(status) && op.example.answer !== undefined) {
        media.example = op.example.answer;
      }
      entry.content = { "application/json": media };
    } else if (answer.contentType) {
      entry.content = { [answer.contentType]: {} };
    }
    if (Number(status) === 302) {
      entry.headers = { Location: { schema: { type: "string" }, description: "Signed URL" } };
    }
    answers[status] = entry;
  }
  for (const status of op.errors ?? []) {
    const codes = Object.entries(ERRORS).filter(([, e]) => "status" in e && e.status === status)
      .map(([c]) => c);
    answers[String(status)] = {
      description: `Error: ${codes.join(" or ")}`,
      content: { "application/json": { schema: { $ref: `${REF}ErrorBody` } } },
      ...(status === 429 || status === 503 ? { headers: retryAfterHeader } : {}),
    };
  }
  answers.default = {
    description: "Any other error of the error table (500 internal, 503 unavailable …)",
    content: { "application/json": { schema: { $ref: `${REF}ErrorBody` } } },
  };
  const object: Json = {
    operationId: op.id,
    summary: op.summary,
    tags: [op.tag],
    security: op.access === "bearer"
      ? [{ bearer: [] }]
      : op.access === "metrics"
      ? [{ metricsToken: [] }, {}]
      : [],
    responses: answers,
  };
  if (parameters.length) object.parameters = parameters;
  if (op.body) {
    const media: Json = { schema: inlineSchema(op.body, named) };
    if (op.example?.body !== undefined) media.example = op.example.body;
    object.requestBody = { required: true, content: { "application/json": media } };
  }
  return object;
}

const retryAfterHeader = {
  "Retry-After": { schema: { type: "integer" }, description: "Whole seconds, at least 1" },
};

/**
 * The OpenAPI 3.1 document of the HTTP API.
 *
 * @example
 * ```ts
 * const doc = openApiDocument({ version: "0.1.0", serverUrl: "https://relay.example.net" });
 * ```
 */
export function openApiDocument(options: { version: string; serverUrl?: string }): Json {
  const named = namedSchemas();
  const paths: Record<string, Json> = {};
  for (const op of OPERATIONS) {
    const path = openApiPath(op.path);
    (paths[path] ??= {})[op.method] = operationObject(op, named);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Sealpost HTTP API",
      version: options.version,
      summary: `A blind relay for end-to-end-encrypted apps, protocol v${PROTOCOL_VERSION}`,
      description: 'Every error answers `{"error":{"code","message","retry_after_ms"?}}`. ' +
        "Unknown paths and wrong methods answer 404 not_found. The WebSocket frames of " +
        "`/v1/ws` are described by `/v1/asyncapi.json`. Prose reference: docs/protocol.md.",
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    servers: [{ url: options.serverUrl ?? "/" }],
    tags: ["server", "auth", "groups", "messages", "blobs", "key packages", "devices"].map((
      name,
    ) => ({ name })),
    paths,
    components: {
      schemas: componentSchemas(named),
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "A token from register or login" },
        metricsToken: {
          type: "http",
          scheme: "bearer",
          description: "SEALPOST_METRICS_TOKEN, when the operator set one",
        },
      },
    },
  };
}

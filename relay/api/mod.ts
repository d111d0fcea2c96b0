/**
 * @module
 * The HTTP API: one Hono app composing the route groups, one error handler that turns every
 * failure into the PROTOCOL.md error body, request logging with a request id (never tokens or
 * bodies), and the unauthenticated `/v1/info`, `/healthz` and `/readyz`.
 */

import { Hono } from "hono";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { parseRate } from "../config/config.ts";
import type { Deps } from "../deps.ts";
import { describeError, RelayError } from "../errors.ts";
import { publicLimits } from "../config/limits.ts";
import { RateLimiter } from "../rate_limit.ts";
import { FEATURES, NAME, VERSION } from "../base/version.ts";
import { asyncApiDocument } from "./asyncapi.ts";
import { openApiDocument } from "./openapi.ts";
import { sameSecret } from "../base/encoding.ts";
import { redactPath } from "../base/log.ts";
import { authRoutes } from "./auth.ts";
import { type ApiEnv, type Auth, requireDevice } from "./context.ts";
import { clientAddress } from "./client_address.ts";
import { bodyLimits } from "./body_limit.ts";
import { type DeviceHooks, deviceRoutes } from "./devices.ts";
import type { PushInfo } from "../push/service.ts";

/** What the API needs beyond the base dependencies. */
export type ApiOptions = {
  hooks: DeviceHooks;
  /** Whether the relay can take traffic: database reachable and migrated, not draining. */
  ready(): Promise<boolean>;
  /** Why the relay cannot take writes right now (a full disk), shown by `/readyz`; null: no reason. */
  notReady?(): string | null;
  /** Extra route groups mounted under `/v1` (messaging, blobs…), given the auth middleware. */
  v1?: ((auth: Auth) => Hono<ApiEnv>)[];
  /** Extra routes mounted at the root before the 404 (WebSocket, admin, metrics). */
  root?: Hono<ApiEnv>[];
  /** The `push` object of `/v1/info`: which push services are configured. */
  pushInfo?: () => PushInfo;
};

let requestCounter = 0;

/**
 * True when reading the request body failed because the client stopped sending it (a chunked
 * body cut off mid-chunk): the client's fault, answered `400`, not a `500` for the logs.
 */
function isTruncatedBody(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource && /request body/i.test(error.message);
}

/**
 * Builds the HTTP app.
 *
 * @example
 * ```ts
 * const app = createApi(deps, { hooks, ready: () => Promise.resolve(true) });
 * Deno.serve((req, info) => app.fetch(req, { remoteAddr: info.remoteAddr }));
 * ```
 */
export function createApi(deps: Deps, options: ApiOptions): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const log = deps.log;

  app.use("*", async (c, next) => {
    const requestId = `${Date.now().toString(36)}-${(++requestCounter).toString(36)}`;
    c.set("requestId", requestId);
    c.set(
      "clientIp",
      clientAddress(c.env?.remoteAddr?.hostname, c.req.raw.headers, deps.config.trustedProxies),
    );
    const started = performance.now();
    await next();
    if (c.req.path === "/healthz" || c.req.path === "/readyz") return;
    const status = c.res.status;
    deps.metrics.httpRequests.inc({ status: `${Math.floor(status / 100)}xx` });
    const fields = {
      request_id: requestId,
      method: c.req.method,
      path: deps.config.logIdentities ? c.req.path : redactPath(c.req.path),
      status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    };
    if (status >= 500) log.error("request", fields);
    else log.info("request", fields);
  });

  app.use("*", bodyLimits(deps.config));

  // Browser apps on any origin may call the API: it authenticates with bearer tokens, never
  // cookies, so allowing every origin exposes nothing a page could not already send.
  app.use(
    "/v1/*",
    cors({
      origin: "*",
      allowMethods: ["GET", "POST", "PUT", "DELETE"],
      allowHeaders: [
        "authorization",
        "content-type",
        "x-amz-checksum-sha256",
        "x-amz-content-sha256",
      ],
      exposeHeaders: ["retry-after"],
      maxAge: 600,
    }),
  );
  app.get("/healthz", (c) => c.json({ ok: true }));
  app.get("/readyz", async (c) => {
    const reason = options.notReady?.() ?? null;
    const ok = reason === null && await options.ready();
    return c.json(reason ? { ready: false, reason } : { ready: ok }, ok ? 200 : 503);
  });
  app.get("/metrics", async (c) => {
    const token = deps.config.metricsToken;
    if (token && !await sameSecret(c.req.header("authorization") ?? "", `Bearer ${token}`)) {
      throw new RelayError("unauthenticated", "This endpoint needs the metrics bearer token");
    }
    return c.body(await deps.metrics.text(), 200, { "content-type": deps.metrics.contentType });
  });
  app.get("/v1/info", async (c) => {
    const settings = await deps.settings.get();
    return c.json({
      name: NAME,
      version: VERSION,
      registration: settings.registration,
      limits: publicLimits(deps.config, settings),
      features: FEATURES,
      privacy: {
        presence: deps.config.presence === "on",
        last_seen_granularity_s: Math.floor(deps.config.lastSeenGranularity / 1000),
      },
      push: options.pushInfo?.() ?? { apns: false, fcm: false, unifiedpush: false },
    });
  });
  // The API as data, built once from the zod schemas the handlers validate with.
  let openApi: string | undefined;
  let asyncApi: string | undefined;
  app.get("/v1/openapi.json", (c) => {
    openApi ??= JSON.stringify(
      openApiDocument({ version: VERSION, serverUrl: deps.config.publicUrl }),
    );
    return c.body(openApi, 200, { "content-type": "application/json" });
  });
  app.get("/v1/asyncapi.json", (c) => {
    const url = new URL(deps.config.publicUrl);
    asyncApi ??= JSON.stringify(
      asyncApiDocument({ version: VERSION, host: url.host, secure: url.protocol === "https:" }),
    );
    return c.body(asyncApi, 200, { "content-type": "application/json" });
  });

  const authLimit = new RateLimiter(
    deps.config.rateAuth,
    undefined,
    deps.clock,
    () => deps.metrics.rateLimited.inc({ limit: "auth" }),
  );
  deps.settings.onChange((values) => authLimit.setRate(parseRate(values.rate_auth)));
  app.route("/v1/auth", authRoutes(deps, authLimit));

  for (const routes of options.root ?? []) app.route("/", routes);

  const auth = requireDevice(deps);
  app.route("/v1", deviceRoutes(deps, auth, options.hooks));
  for (const routes of options.v1 ?? []) app.route("/v1", routes(auth));

  app.notFound((c) =>
    c.json(new RelayError("not_found", `No route for ${c.req.method} ${c.req.path}`).toBody(), 404)
  );

  app.onError((thrown, c) => {
    if (thrown instanceof HTTPException && thrown.status < 500) {
      const code = thrown.status === 413 ? "too_large" : "invalid_request";
      return c.json(new RelayError(code, thrown.message || undefined).toBody(), thrown.status);
    }
    if (isTruncatedBody(thrown)) {
      const error = new RelayError(
        "invalid_request",
        "The request body ended before it was complete",
      );
      return c.json(error.toBody(), 400);
    }
    const { error, status, body, unexpected } = describeError(thrown);
    if (unexpected) {
      log.error("unhandled error", {
        request_id: c.get("requestId"),
        method: c.req.method,
        path: c.req.path,
        error: thrown,
      });
    } else if (error.code === "unavailable" && !(thrown instanceof RelayError)) {
      log.warn("database unavailable", { request_id: c.get("requestId"), path: c.req.path });
    }
    if (error.retryAfterMs !== undefined) {
      c.header("Retry-After", String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
    }
    return c.json(body, status as 400);
  });
  return app;
}

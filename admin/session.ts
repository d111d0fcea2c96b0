/**
 * @module
 * Admin sessions over HTTP: the session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` when the
 * public URL is https), the middleware that requires a live session, and CSRF protection. Every
 * request that changes something (any method but GET/HEAD) must carry the session's CSRF token
 * in the `X-CSRF-Token` header (htmx) or the `_csrf` form field (plain forms); before login, a
 * random token in a separate cookie is checked the same way (double submit). A request without
 * it is refused with `403` before any handler runs.
 */

import { clientIp } from "../relay/api/context.ts";
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { type AdminSession, findAdminSession } from "./auth.ts";
import { randomId } from "../relay/base/encoding.ts";
import { RelayError } from "../relay/errors.ts";
import type { AdminDeps, AdminEnv } from "./types.ts";

/** The session cookie. */
export const SESSION_COOKIE = "sealpost_admin";
/** The pre-login CSRF cookie (login and setup forms). */
export const PRE_COOKIE = "sealpost_admin_pre";

function secure(deps: AdminDeps): boolean {
  return deps.config.publicUrl.startsWith("https:");
}

/** Sets the session cookie. */
export function setSessionCookie(
  c: Context<AdminEnv>,
  deps: AdminDeps,
  token: string,
  maxAgeS: number,
): void {
  setCookie(c, SESSION_COOKIE, token, {
    path: "/admin",
    httpOnly: true,
    sameSite: "Strict",
    secure: secure(deps),
    maxAge: maxAgeS,
  });
}

/** Removes the session cookie. */
export function clearSessionCookie(c: Context<AdminEnv>, deps: AdminDeps): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/admin", secure: secure(deps) });
}

/** The session cookie's value, if any. */
export function sessionToken(c: Context<AdminEnv>): string | undefined {
  return getCookie(c, SESSION_COOKIE);
}

/** The pre-login CSRF token: the cookie's, or a new one set now. */
export function preLoginToken(c: Context<AdminEnv>, deps: AdminDeps): string {
  const existing = getCookie(c, PRE_COOKIE);
  if (existing && /^[A-Za-z0-9_-]{32,}$/.test(existing)) return existing;
  const token = randomId(24);
  setCookie(c, PRE_COOKIE, token, {
    path: "/admin",
    httpOnly: true,
    sameSite: "Strict",
    secure: secure(deps),
  });
  return token;
}

/** Equal-time string comparison. */
function same(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** The CSRF token a request carries (header or form field). */
async function submittedToken(c: Context<AdminEnv>): Promise<string | undefined> {
  const header = c.req.header("x-csrf-token");
  if (header) return header;
  const type = c.req.header("content-type") ?? "";
  if (type.includes("application/x-www-form-urlencoded") || type.includes("multipart/form-data")) {
    const body = await parseForm(c);
    const field = body["_csrf"];
    return typeof field === "string" ? field : undefined;
  }
  return undefined;
}

/**
 * The parsed form body. A body the declared type cannot parse (a multipart body without its
 * boundary, say) is the client's fault: `400 invalid_request`, not a `500`.
 */
async function parseForm(c: Context<AdminEnv>): Promise<Record<string, unknown>> {
  try {
    return await c.req.parseBody();
  } catch {
    throw new RelayError("invalid_request", "The form body cannot be parsed");
  }
}

/** Reads the form body (after the CSRF check parsed it), string fields only. */
export async function formFields(c: Context<AdminEnv>): Promise<Record<string, string>> {
  const body = await parseForm(c);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(body)) if (typeof value === "string") out[key] = value;
  return out;
}

function refuse(c: Context<AdminEnv>, status: 401 | 403, message: string): Response {
  return c.text(message, status, { "cache-control": "no-store" });
}

/** True for methods that change nothing. */
function safe(method: string): boolean {
  return method === "GET" || method === "HEAD";
}

/**
 * Requires a live session: unauthenticated page loads are sent to the login page (htmx requests
 * get `HX-Redirect`), and mutating requests must carry the session's CSRF token.
 */
export function requireAdmin(deps: AdminDeps): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
    const token = sessionToken(c);
    const session: AdminSession | null = token
      ? await findAdminSession(deps.db, deps.clock, token)
      : null;
    if (!session) {
      if (token) clearSessionCookie(c, deps);
      if (!safe(c.req.method)) return refuse(c, 401, "Not logged in");
      if (c.req.header("hx-request")) {
        return c.body(null, 401, { "HX-Redirect": "/admin/login" });
      }
      const next = c.req.path + (new URL(c.req.url).search || "");
      return c.redirect(`/admin/login?next=${encodeURIComponent(next)}`, 303);
    }
    if (!safe(c.req.method)) {
      const submitted = await submittedToken(c);
      if (!submitted || !same(submitted, session.csrf)) {
        deps.log.warn("admin request without a valid CSRF token refused", {
          method: c.req.method,
          path: c.req.path,
        });
        return refuse(c, 403, "Refused: this request lacks a valid CSRF token");
      }
    }
    c.set("session", session);
    const ip = clientIp(c);
    c.set("actor", `admin:${session.id.slice(0, 8)}@${ip}`);
    await next();
  };
}

/** Checks the double-submit token of the login and setup forms; a refusal response or null. */
export async function checkPreLogin(c: Context<AdminEnv>): Promise<Response | null> {
  const cookie = getCookie(c, PRE_COOKIE);
  const submitted = await submittedToken(c);
  if (!cookie || !submitted || !same(cookie, submitted)) {
    return refuse(c, 403, "Refused: this request lacks a valid CSRF token");
  }
  return null;
}

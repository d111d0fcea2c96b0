/**
 * @module
 * Turns a page's component tree into an HTML response with the dashboard's security headers.
 */

import type { Context } from "hono";
import type { VNode } from "preact";
import { renderToString } from "preact-render-to-string";
import type { AdminEnv } from "./types.ts";

/**
 * Headers of every dashboard response: no framing, no referrer (setup links carry a token), no
 * caching of pages, and a policy that allows only the dashboard's own scripts and styles.
 */
export const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
};

/** A full page (with doctype). */
export function page(c: Context<AdminEnv>, tree: VNode, status = 200): Response {
  return c.html("<!doctype html>" + renderToString(tree), status as 200, {
    "cache-control": "no-store",
  });
}

/** An htmx fragment. */
export function fragment(c: Context<AdminEnv>, tree: VNode, status = 200): Response {
  return c.html(renderToString(tree), status as 200, { "cache-control": "no-store" });
}

/** True when htmx asked for the element `target` (not a history restore). */
export function wantsFragment(c: Context<AdminEnv>, target: string): boolean {
  return c.req.header("hx-request") === "true" &&
    c.req.header("hx-history-restore-request") !== "true" &&
    c.req.header("hx-target") === target;
}

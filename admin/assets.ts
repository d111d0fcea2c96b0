/**
 * @module
 * The dashboard's static assets, imported as text so they are embedded in the compiled binary
 * (nothing is read from disk at run time), served under content-hashed URLs with a year-long
 * `immutable` cache: a new build changes the hash, so browsers never keep a stale file.
 */

import { Hono } from "hono";
import htmx from "htmx.org/dist/htmx.min.js" with { type: "text" };
import css from "./assets/admin.css" with { type: "text" };

/** FNV-1a (64-bit) as hex: a stable content hash computed synchronously at import. */
function contentHash(text: string): string {
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    hash ^= BigInt(text.charCodeAt(i));
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, "0").slice(0, 12);
}

type Asset = { path: string; body: string; type: string };

const FILES: Record<"css" | "htmx", Asset> = {
  css: { path: `admin-${contentHash(css)}.css`, body: css, type: "text/css; charset=utf-8" },
  htmx: {
    path: `htmx-2.0.11-${contentHash(htmx)}.min.js`,
    body: htmx,
    type: "text/javascript; charset=utf-8",
  },
};

/** The URLs pages link to. */
export const ASSET_URLS = {
  css: `/admin/assets/${FILES.css.path}`,
  htmx: `/admin/assets/${FILES.htmx.path}`,
};

/** Serves the assets (no login needed: they hold nothing secret). */
export function assetRoutes(): Hono {
  const app = new Hono();
  const byPath = new Map(Object.values(FILES).map((f) => [f.path, f]));
  app.get("/assets/:file", (c) => {
    const file = byPath.get(c.req.param("file"));
    if (!file) return c.text("Not found", 404);
    return c.body(file.body, 200, {
      "content-type": file.type,
      "cache-control": "public, max-age=31536000, immutable",
      "x-content-type-options": "nosniff",
    });
  });
  return app;
}

/**
 * @module
 * The admin dashboard, served by the relay at `/admin`: server-rendered preact pages
 * (`pages/`, one per URL), htmx fragments (`partials/`) and pure components (`components/`),
 * reading and changing state only through the relay's services. Every page but login, setup and
 * the static assets needs a session; every mutating request needs the session's CSRF token.
 *
 * @example
 * ```ts
 * const admin = createAdmin({ ...deps, instances, history, live: hub });
 * const api = createApi(deps, { hooks, ready, root: [admin] });
 * ```
 */

import { Hono } from "hono";
import { createSetupToken, hasStoredPassword, purgeExpiredAdminSessions } from "./auth.ts";
import type { ApiEnv } from "../relay/api/context.ts";
import { assetRoutes } from "./assets.ts";
import { accountPage } from "./pages/account.tsx";
import { auditPage } from "./pages/audit.tsx";
import { devicePage } from "./pages/device.tsx";
import { devicesPage } from "./pages/devices.tsx";
import { groupPage } from "./pages/group.tsx";
import { groupsPage } from "./pages/groups.tsx";
import { invitesPage } from "./pages/invites.tsx";
import { joinPage } from "./pages/join.tsx";
import { loginPage } from "./pages/login.tsx";
import { overviewPage } from "./pages/overview.tsx";
import { settingsPage } from "./pages/settings.tsx";
import { setupPage } from "./pages/setup.tsx";
import { SECURITY_HEADERS } from "./render.ts";
import { requireAdmin } from "./session.ts";
import type { AdminDeps, AdminEnv } from "./types.ts";
import type { Mount, RelayParts } from "../relay/mod.ts";
import { MetricsHistory } from "./metrics_history.ts";

export type { AdminDeps, LiveView } from "./types.ts";

/**
 * The dashboard as a part mounted on a relay (`createRelay({ mounts: [mountAdmin] })`): its
 * routes, the minute-by-minute traffic history it keeps, and the one-time setup link at start.
 */
export function mountAdmin(parts: RelayParts): Mount {
  const history = new MetricsHistory(parts.metrics, parts.clock);
  const deps: AdminDeps = { ...parts, history };
  let purging: ReturnType<typeof setInterval> | undefined;
  // Expired sessions and setup tokens are refused when used; this removes their rows.
  const purge = () =>
    purgeExpiredAdminSessions(deps.db, deps.clock).catch((error) =>
      deps.log.warn("purging expired admin sessions failed", { error })
    );
  return {
    routes: createAdmin(deps),
    start: async () => {
      history.start();
      await purge();
      purging = setInterval(purge, PURGE_INTERVAL_MS);
      Deno.unrefTimer(purging);
      await announceSetupLink(deps);
    },
    stop: () => {
      clearInterval(purging);
      history.stop();
    },
  };
}

/** How often expired admin sessions and setup tokens are deleted (also once at start). */
const PURGE_INTERVAL_MS = 60 * 60_000;

/** Paths under `/admin` that need no session. */
const PUBLIC = /^\/admin\/(login|setup|assets\/[^/]+)$/;

/**
 * Builds the dashboard's routes (`/admin…` and the public `/join`), to mount at the root.
 */
export function createAdmin(deps: AdminDeps): Hono<ApiEnv> {
  const app = new Hono<AdminEnv>();
  const guard = requireAdmin(deps);

  const gate = async (c: Parameters<typeof guard>[0], next: () => Promise<void>) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.header(name, value);
    if (PUBLIC.test(c.req.path)) return await next();
    return await guard(c, next);
  };
  app.use("/admin", gate);
  app.use("/admin/*", gate);

  const admin = new Hono<AdminEnv>();
  admin.route("/", assetRoutes());
  loginPage(admin, deps);
  setupPage(admin, deps);
  overviewPage(admin, deps);
  devicesPage(admin, deps);
  devicePage(admin, deps);
  accountPage(admin, deps);
  groupsPage(admin, deps);
  groupPage(admin, deps);
  invitesPage(admin, deps);
  settingsPage(admin, deps);
  auditPage(admin, deps);
  app.route("/admin", admin);
  joinPage(app, deps);
  return app as unknown as Hono<ApiEnv>;
}

/**
 * At start: with no password configured (no `SEALPOST_ADMIN_PASSWORD`, none stored), logs a
 * one-time setup link valid for 24 hours. Returns the link, or null when a password exists.
 */
export async function announceSetupLink(deps: AdminDeps): Promise<string | null> {
  if (deps.config.adminPassword !== undefined || await hasStoredPassword(deps.db)) return null;
  const token = await createSetupToken(deps.db, deps.clock);
  const link = `${deps.config.publicUrl}/admin/setup?token=${token}`;
  deps.log.warn(
    "no admin password is set: open this one-time link within 24 h to choose one",
    { setup_link: link },
  );
  return link;
}

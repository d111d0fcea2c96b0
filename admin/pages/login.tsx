/**
 * @module
 * `/admin/login` and `/admin/logout`: the password form, rate limited per client address and
 * overall, protected by a double-submit CSRF token, and the session's end.
 */

import type { Hono } from "hono";
import {
  checkAdminPassword,
  createAdminSession,
  endAdminSession,
  hasStoredPassword,
  SESSION_TTL_MS,
} from "../auth.ts";
import { recordAudit } from "../queries.ts";
import { RateLimiter } from "../../relay/rate_limit.ts";
import { ASSET_URLS } from "../assets.ts";
import { Layout, Notice } from "../components/layout.tsx";
import { page } from "../render.ts";
import {
  checkPreLogin,
  clearSessionCookie,
  formFields,
  preLoginToken,
  sessionToken,
  setSessionCookie,
} from "../session.ts";
import type { AdminDeps, AdminEnv } from "../types.ts";

/** Where to go after login: only paths inside the dashboard (no open redirect). */
export function safeNext(next: string | undefined): string {
  if (!next || !next.startsWith("/admin") || next.startsWith("//") || next.includes("\\")) {
    return "/admin";
  }
  return next;
}

/** The login form. */
export function LoginPage(
  props: { csrf: string; next: string; error?: string; configured: boolean },
) {
  return (
    <Layout title="Log in" assets={ASSET_URLS}>
      <section class="login">
        <h1>Sealpost admin</h1>
        {props.error && <Notice kind="error">{props.error}</Notice>}
        {!props.configured && (
          <Notice kind="error">
            No admin password is set. Set SEALPOST_ADMIN_PASSWORD, run{" "}
            <code>sealpost admin set-password</code>, or open the setup link in the relay's log.
          </Notice>
        )}
        <form method="post" action="/admin/login">
          <input type="hidden" name="_csrf" value={props.csrf} />
          <input type="hidden" name="next" value={props.next} />
          <div class="field">
            <label for="password">Password</label>
            <input
              id="password"
              name="password"
              type="password"
              autocomplete="current-password"
              required
              autofocus
            />
          </div>
          <button type="submit" class="primary">Log in</button>
        </form>
      </section>
    </Layout>
  );
}

/** Registers the login and logout routes. */
export function loginPage(app: Hono<AdminEnv>, deps: AdminDeps): void {
  // Per address: 5 tries at once, then one every 6 s; overall: 60 a minute, so many addresses
  // together still guess slowly.
  const perIp = new RateLimiter({ count: 10, perMs: 60_000 }, 5, deps.clock);
  const overall = new RateLimiter({ count: 60, perMs: 60_000 }, 20, deps.clock);
  const configured = async () =>
    deps.config.adminPassword !== undefined || await hasStoredPassword(deps.db);

  app.get("/login", async (c) => {
    const csrf = preLoginToken(c, deps);
    return page(
      c,
      <LoginPage
        csrf={csrf}
        next={safeNext(c.req.query("next"))}
        configured={await configured()}
      />,
    );
  });

  app.post("/login", async (c) => {
    const refused = await checkPreLogin(c);
    if (refused) return refused;
    const ip = c.env?.remoteAddr?.hostname ?? "unknown";
    const wait = Math.max(perIp.take(ip), overall.take("*"));
    const form = await formFields(c);
    const next = safeNext(form.next);
    const csrf = preLoginToken(c, deps);
    if (wait > 0) {
      deps.log.warn("admin login rate limited", { ip });
      c.header("Retry-After", String(Math.ceil(wait / 1000)));
      return page(
        c,
        <LoginPage
          csrf={csrf}
          next={next}
          configured
          error={`Too many login attempts. Try again in ${Math.ceil(wait / 1000)} s.`}
        />,
        429,
      );
    }
    const ok = await checkAdminPassword(deps.db, deps.config.adminPassword, form.password ?? "");
    if (!ok) {
      deps.log.warn("admin login failed", { ip });
      return page(
        c,
        <LoginPage
          csrf={csrf}
          next={next}
          configured={await configured()}
          error="Wrong password."
        />,
        401,
      );
    }
    const { token, session } = await createAdminSession(deps.db, deps.clock, ip);
    setSessionCookie(c, deps, token, Math.floor(SESSION_TTL_MS / 1000));
    await recordAudit(deps, `admin:${session.id.slice(0, 8)}@${ip}`, "admin.login", { ip });
    deps.log.info("admin logged in", { ip });
    return c.redirect(next, 303);
  });

  app.post("/logout", async (c) => {
    const token = sessionToken(c);
    if (token) await endAdminSession(deps.db, token);
    await recordAudit(deps, c.get("actor"), "admin.logout", {});
    clearSessionCookie(c, deps);
    return c.redirect("/admin/login", 303);
  });
}

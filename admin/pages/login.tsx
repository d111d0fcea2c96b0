/**
 * @module
 * `/admin/login` and `/admin/logout`: the password form and the session's end. Failed logins are
 * limited per client address (an address over its limit is refused before its password is
 * checked) and slowed down overall — never refused overall, so guesses from many addresses
 * cannot lock the admin out. Protected by a double-submit CSRF token.
 */

import { clientIp } from "../../relay/api/context.ts";
import type { Hono } from "hono";
import {
  checkAdminPassword,
  createAdminSession,
  endAdminSession,
  hasStoredPassword,
  SESSION_TTL_MS,
} from "../auth.ts";
import { recordAudit } from "../../relay/store/audit.ts";
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

/** How long a failed login is answered late while failures overall are over their rate. */
export const FAILURE_SLOWDOWN_MS = 1000;

/** Runs async jobs one after another. */
class Serial {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(job, job);
    this.#tail = result.catch(() => {});
    return result;
  }
}

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
  // Per address: 5 failures at once, then one every 6 s; the password is not even checked for
  // an address over it. Overall, failures from all addresses together past 20 at once (then 60
  // a minute) are answered slowly, never refused: many addresses cannot lock the admin out, and
  // the right password is never refused because of others' failures.
  const failuresPerIp = new RateLimiter({ count: 10, perMs: 60_000 }, 5, deps.clock);
  const failuresOverall = new RateLimiter({ count: 60, perMs: 60_000 }, 20, deps.clock);
  // One check at a time: a flood of guesses queues instead of running PBKDF2 on every core.
  const checks = new Serial();
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
    const ip = clientIp(c);
    // Taken before the check (so parallel guesses from one address cannot all slip past a
    // peek) and given back when the password is right.
    const wait = failuresPerIp.take(ip);
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
          error={`Too many failed logins from your address. Try again in ${
            Math.ceil(wait / 1000)
          } s.`}
        />,
        429,
      );
    }
    const ok = await checks.run(() =>
      checkAdminPassword(deps.db, deps.config.adminPassword, form.password ?? "")
    );
    if (!ok) {
      deps.log.warn("admin login failed", { ip });
      if (failuresOverall.take("*") > 0) {
        await new Promise((resolve) => setTimeout(resolve, FAILURE_SLOWDOWN_MS));
      }
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
    failuresPerIp.refund(ip);
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

/**
 * @module
 * `/admin/setup?token=…`: the one-time link logged at the first start without a password. The
 * first visitor chooses the admin password; the link then stops working. Tries are rate limited
 * per client address, and a wrong or used token is refused before the password is hashed.
 */

import { clientIp } from "../../relay/api/context.ts";
import type { Hono } from "hono";
import {
  completeSetup,
  createAdminSession,
  isSetupTokenValid,
  MIN_PASSWORD_LENGTH,
  SESSION_TTL_MS,
} from "../auth.ts";
import { recordAudit } from "../../relay/store/audit.ts";
import { RelayError } from "../../relay/errors.ts";
import { RateLimiter } from "../../relay/rate_limit.ts";
import { ASSET_URLS } from "../assets.ts";
import { Layout, Notice } from "../components/layout.tsx";
import { page } from "../render.ts";
import { checkPreLogin, formFields, preLoginToken, setSessionCookie } from "../session.ts";
import type { AdminDeps, AdminEnv } from "../types.ts";

/** The choose-a-password form, or why the link does not work. */
export function SetupPage(props: { csrf: string; token: string; valid: boolean; error?: string }) {
  return (
    <Layout title="Set up" assets={ASSET_URLS}>
      <section class="login">
        <h1>Choose the admin password</h1>
        {props.error && <Notice kind="error">{props.error}</Notice>}
        {props.valid
          ? (
            <form method="post" action="/admin/setup">
              <input type="hidden" name="_csrf" value={props.csrf} />
              <input type="hidden" name="token" value={props.token} />
              <div class="field">
                <label for="password">New password</label>
                <p class="hint" id="password-hint">At least {MIN_PASSWORD_LENGTH} characters.</p>
                <input
                  id="password"
                  name="password"
                  type="password"
                  autocomplete="new-password"
                  minLength={MIN_PASSWORD_LENGTH}
                  aria-describedby="password-hint"
                  required
                />
              </div>
              <div class="field">
                <label for="confirm">Repeat the password</label>
                <input
                  id="confirm"
                  name="confirm"
                  type="password"
                  autocomplete="new-password"
                  required
                />
              </div>
              <button type="submit" class="primary">Set password and log in</button>
            </form>
          )
          : (
            <p>
              This setup link is used, expired or unknown. <a href="/admin/login">Log in</a>{" "}
              or set a password with <code>sealpost admin set-password</code>.
            </p>
          )}
      </section>
    </Layout>
  );
}

/** Registers the setup routes. */
export function setupPage(app: Hono<AdminEnv>, deps: AdminDeps): void {
  // Per address: 5 tries at once, then 10 a minute (every try, right or wrong).
  const triesPerIp = new RateLimiter({ count: 10, perMs: 60_000 }, 5, deps.clock);
  app.get("/setup", async (c) => {
    const token = c.req.query("token") ?? "";
    const valid = deps.config.adminPassword === undefined &&
      await isSetupTokenValid(deps.db, deps.clock, token);
    return page(
      c,
      <SetupPage csrf={preLoginToken(c, deps)} token={token} valid={valid} />,
      valid ? 200 : 404,
    );
  });

  app.post("/setup", async (c) => {
    const refused = await checkPreLogin(c);
    if (refused) return refused;
    const ip = clientIp(c);
    const wait = triesPerIp.take(ip);
    const form = await formFields(c);
    const token = form.token ?? "";
    const csrf = preLoginToken(c, deps);
    if (wait > 0) {
      deps.log.warn("admin setup rate limited", { ip });
      c.header("Retry-After", String(Math.ceil(wait / 1000)));
      return page(
        c,
        <SetupPage
          csrf={csrf}
          token={token}
          valid
          error={`Too many tries. Try again in ${Math.ceil(wait / 1000)} s.`}
        />,
        429,
      );
    }
    const again = (error: string, status = 400) =>
      page(c, <SetupPage csrf={csrf} token={token} valid error={error} />, status);
    if ((form.password ?? "") !== (form.confirm ?? "")) return again("The passwords differ.");
    let done: boolean;
    try {
      done = deps.config.adminPassword === undefined &&
        await completeSetup(deps.db, deps.clock, token, form.password ?? "");
    } catch (error) {
      if (error instanceof RelayError) return again(error.message);
      throw error;
    }
    if (!done) {
      return page(c, <SetupPage csrf={csrf} token={token} valid={false} />, 404);
    }
    const { token: cookie, session } = await createAdminSession(deps.db, deps.clock, ip);
    setSessionCookie(c, deps, cookie, Math.floor(SESSION_TTL_MS / 1000));
    await recordAudit(deps, `admin:${session.id.slice(0, 8)}@${ip}`, "admin.password", {
      via: "setup link",
    });
    return c.redirect("/admin", 303);
  });
}

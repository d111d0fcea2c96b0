/**
 * @module
 * The dashboard's login and request protection over plain HTTP (no browser), on both databases:
 * cookie flags, CSRF refusal, login rate limit, session expiry on the injected clock, logout,
 * the one-time setup link, security headers and long-cached hashed assets.
 */

import assert from "node:assert/strict";
import { SESSION_IDLE_MS, SESSION_TTL_MS } from "../../admin/auth.ts";
import { startTestRelay, testBothDatabases, type TestRelay } from "../helpers/relay.ts";

const PASSWORD = "correct horse battery staple";

/** A tiny cookie-keeping client for the dashboard. */
class AdminClient {
  cookies = new Map<string, string>();
  /** `forwardedFor`: the address a trusted proxy reports (`X-Forwarded-For`), if any. */
  constructor(readonly relay: TestRelay, readonly forwardedFor?: string) {}

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.forwardedFor) headers.set("x-forwarded-for", this.forwardedFor);
    if (this.cookies.size > 0) {
      headers.set("cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    }
    const response = await fetch(`${this.relay.url}${path}`, {
      ...init,
      headers,
      redirect: "manual",
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const [name, value] = pair.split("=");
      if (/Max-Age=0/i.test(line) || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  async form(path: string, fields: Record<string, string>): Promise<Response> {
    return await this.fetch(path, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields),
    });
  }

  /** The `_csrf` value of a page's first form. */
  async csrfOf(path: string): Promise<string> {
    const html = await (await this.fetch(path)).text();
    const match = /name="_csrf" value="([^"]+)"/.exec(html);
    assert.ok(match, `${path} has a CSRF field`);
    return match[1];
  }

  async login(password = PASSWORD): Promise<Response> {
    const csrf = await this.csrfOf("/admin/login");
    return await this.form("/admin/login", { _csrf: csrf, password, next: "/admin" });
  }
}

testBothDatabases("admin login sets a strict HttpOnly cookie and logout ends it", async (kind) => {
  const relay = await startTestRelay({ db: kind, env: { SEALPOST_ADMIN_PASSWORD: PASSWORD } });
  try {
    const admin = new AdminClient(relay);
    const wrong = await admin.login("nope nope nope");
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const ok = await admin.login();
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get("location"), "/admin");
    const cookie = ok.headers.getSetCookie().find((c) => c.startsWith("sealpost_admin="))!;
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(cookie, /Path=\/admin/);
    assert.doesNotMatch(cookie, /Secure/, "no Secure flag over plain http");
    const overview = await admin.fetch("/admin");
    assert.equal(overview.status, 200);
    assert.match(overview.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
    assert.equal(overview.headers.get("cache-control"), "no-store");
    const html = await overview.text();
    assert.match(html, /data-stat="devices_active"/);

    const csrf = /name="_csrf" value="([^"]+)"/.exec(html)![1];
    const out = await admin.form("/admin/logout", { _csrf: csrf });
    assert.equal(out.status, 303);
    const after = await admin.fetch("/admin");
    assert.equal(after.status, 303);
    assert.match(after.headers.get("location") ?? "", /^\/admin\/login/);
  } finally {
    await relay.stop();
  }
});

testBothDatabases("admin POSTs without the CSRF token are refused", async (kind) => {
  const relay = await startTestRelay({ db: kind, env: { SEALPOST_ADMIN_PASSWORD: PASSWORD } });
  try {
    const admin = new AdminClient(relay);
    // Before login: the login form itself needs its token.
    await admin.fetch("/admin/login").then((r) => r.body?.cancel());
    const bare = await admin.form("/admin/login", { password: PASSWORD });
    assert.equal(bare.status, 403);
    await bare.body?.cancel();

    await admin.login();
    for (
      const [path, fields] of [
        ["/admin/settings", { registration: "closed" }],
        ["/admin/invites", { uses: "1" }],
        ["/admin/logout", {}],
      ] as const
    ) {
      const refused = await admin.form(path, fields);
      assert.equal(refused.status, 403, `${path} without a token`);
      await refused.body?.cancel();
      const wrong = await admin.form(path, { ...fields, _csrf: "x".repeat(43) });
      assert.equal(wrong.status, 403, `${path} with a wrong token`);
      await wrong.body?.cancel();
    }
    assert.equal((await relay.relay.deps.settings.reload()).registration, "open");

    // The header form (htmx) works like the field.
    const csrf = await admin.csrfOf("/admin/settings");
    const viaHeader = await admin.fetch("/admin/settings", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-csrf-token": csrf },
      body: "registration=invite",
    });
    assert.equal(viaHeader.status, 303);
    assert.equal((await relay.relay.deps.settings.reload()).registration, "invite");

    // Without a session at all.
    const anonymous = await fetch(`${relay.url}/admin/settings`, {
      method: "POST",
      body: new URLSearchParams({ registration: "open", _csrf: csrf }),
    });
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();
  } finally {
    await relay.stop();
  }
});

Deno.test({
  name: "admin login is rate limited and sessions expire on the relay's clock",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const relay = await startTestRelay({ env: { SEALPOST_ADMIN_PASSWORD: PASSWORD } });
    try {
      const guesser = new AdminClient(relay);
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) {
        const r = await guesser.login(`guess ${i} guess`);
        statuses.push(r.status);
        if (r.status === 429) assert.ok(Number(r.headers.get("retry-after")) >= 1);
        await r.body?.cancel();
      }
      assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
      assert.equal(statuses[5], 429, "the sixth try at once is refused");
      const stillLimited = await guesser.login();
      assert.equal(stillLimited.status, 429, "even the right password waits");
      await stillLimited.body?.cancel();
      relay.clock.advance(60_000);
      const after = await guesser.login();
      assert.equal(after.status, 303, "a minute later the right password works");

      // Idle expiry.
      assert.equal((await guesser.fetch("/admin")).status, 200);
      relay.clock.advance(SESSION_IDLE_MS + 1);
      const idle = await guesser.fetch("/admin");
      assert.equal(idle.status, 303, "idle session ended");
      await idle.body?.cancel();

      // Absolute expiry, however active.
      const active = new AdminClient(relay);
      await active.login().then((r) => r.body?.cancel());
      for (let t = 0; t < SESSION_TTL_MS; t += SESSION_IDLE_MS / 2) {
        relay.clock.advance(SESSION_IDLE_MS / 2);
        const r = await active.fetch("/admin/partials/overview", {
          headers: { "hx-request": "true" },
        });
        await r.body?.cancel();
        if (t + SESSION_IDLE_MS / 2 >= SESSION_TTL_MS) {
          assert.equal(r.status, 401);
          assert.equal(r.headers.get("hx-redirect"), "/admin/login");
        } else assert.equal(r.status, 200);
      }
    } finally {
      await relay.stop();
    }
  },
});

Deno.test({
  name: "without a password the first start logs a one-time setup link",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const relay = await startTestRelay({ logLevel: "info" });
    try {
      const line = relay.logs.find((l) => l.includes("setup_link"));
      assert.ok(line, "the setup link is logged");
      const link = new URL(JSON.parse(line).setup_link);
      const path = `${link.pathname}${link.search}`;
      const admin = new AdminClient(relay);
      const login = await admin.fetch("/admin/login");
      assert.match(await login.text(), /No admin password is set/);
      const form = await admin.fetch(path);
      assert.equal(form.status, 200);
      assert.equal(form.headers.get("referrer-policy"), "no-referrer");
      const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1];
      const token = link.searchParams.get("token")!;
      const short = await admin.form("/admin/setup", {
        _csrf: csrf,
        token,
        password: "short",
        confirm: "short",
      });
      assert.equal(short.status, 400);
      await short.body?.cancel();
      const done = await admin.form("/admin/setup", {
        _csrf: csrf,
        token,
        password: "a long new password",
        confirm: "a long new password",
      });
      assert.equal(done.status, 303);
      assert.equal((await admin.fetch("/admin")).status, 200, "logged in after setup");
      const reused = await new AdminClient(relay).fetch(path);
      assert.equal(reused.status, 404, "the link works once");
      await reused.body?.cancel();
      const again = new AdminClient(relay);
      assert.equal((await again.login("a long new password")).status, 303);
    } finally {
      await relay.stop();
    }
  },
});

Deno.test({
  name: "admin assets are embedded, hashed and cached for a year; Secure cookie behind https",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const relay = await startTestRelay({
      env: {
        SEALPOST_ADMIN_PASSWORD: PASSWORD,
        SEALPOST_PUBLIC_URL: "https://relay.example.com",
      },
    });
    try {
      const html = await (await fetch(`${relay.url}/admin/login`)).text();
      const css = /href="(\/admin\/assets\/admin-[0-9a-f]+\.css)"/.exec(html)?.[1];
      const js = /src="(\/admin\/assets\/htmx-2\.0\.11-[0-9a-f]+\.min\.js)"/.exec(html)?.[1];
      assert.ok(css && js, "the page links hashed assets");
      for (const path of [css, js]) {
        const r = await fetch(`${relay.url}${path}`);
        assert.equal(r.status, 200);
        assert.equal(r.headers.get("cache-control"), "public, max-age=31536000, immutable");
        assert.ok((await r.text()).length > 1000);
      }
      const admin = new AdminClient(relay);
      const ok = await admin.login();
      const cookie = ok.headers.getSetCookie().find((c) => c.startsWith("sealpost_admin="))!;
      assert.match(cookie, /Secure/);
    } finally {
      await relay.stop();
    }
  },
});

testBothDatabases("a malformed admin form answers 400, never 500", async (kind) => {
  const relay = await startTestRelay({ db: kind, env: { SEALPOST_ADMIN_PASSWORD: PASSWORD } });
  try {
    const admin = new AdminClient(relay);
    const broken = { "content-type": "multipart/form-data; boundary=x" };
    // Before login: the CSRF check is the first to read the form.
    const login = await admin.fetch("/admin/login", {
      method: "POST",
      headers: broken,
      body: "password=x&_csrf=y",
    });
    assert.equal(login.status, 400);
    assert.equal((await login.json()).error.code, "invalid_request");

    // After login, with the token in the header: the page's own read of the form.
    await admin.login();
    const csrf = await admin.csrfOf("/admin/settings");
    const settings = await admin.fetch("/admin/settings", {
      method: "POST",
      headers: { ...broken, "x-csrf-token": csrf },
      body: "registration=closed",
    });
    assert.equal(settings.status, 400);
    await settings.body?.cancel();
    assert.equal((await relay.relay.deps.settings.reload()).registration, "open");
  } finally {
    await relay.stop();
  }
});

Deno.test({
  name: "25 wrong admin passwords from five addresses do not lock out the right one from a sixth",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const relay = await startTestRelay({
      env: { SEALPOST_ADMIN_PASSWORD: PASSWORD, SEALPOST_TRUSTED_PROXIES: "127.0.0.1" },
    });
    try {
      const guesses = [];
      for (let a = 1; a <= 5; a++) {
        const guesser = new AdminClient(relay, `203.0.113.${a}`);
        guesses.push((async () => {
          const statuses = [];
          for (let i = 0; i < 5; i++) {
            const r = await guesser.login(`guess ${a}.${i} guess`);
            statuses.push(r.status);
            await r.body?.cancel();
          }
          return statuses;
        })());
      }
      const statuses = (await Promise.all(guesses)).flat();
      assert.deepEqual(statuses, new Array(25).fill(401), "every guess was checked and failed");
      const blocked = await new AdminClient(relay, "203.0.113.1").login();
      assert.equal(blocked.status, 429, "an address past its failures is refused, right or not");
      await blocked.body?.cancel();
      const admin = new AdminClient(relay, "198.51.100.7");
      const ok = await admin.login();
      assert.equal(ok.status, 303, "the right password from a fresh address logs in");
      assert.equal((await admin.fetch("/admin")).status, 200);
      const audit = await relay.database.db.selectFrom("audit_log").selectAll()
        .where("action", "=", "admin.login").execute();
      assert.ok(
        audit.some((row) => JSON.stringify(row).includes("198.51.100.7")),
        "the audit log names the client, not the proxy",
      );
    } finally {
      await relay.stop();
    }
  },
});

Deno.test({
  name: "admin setup refuses a bogus token before hashing and is rate limited per address",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const relay = await startTestRelay({ logLevel: "info" });
    const subtle = crypto.subtle;
    const original = subtle.deriveBits;
    let derivations = 0;
    subtle.deriveBits = function (...args: Parameters<SubtleCrypto["deriveBits"]>) {
      derivations++;
      return original.apply(subtle, args);
    };
    try {
      const admin = new AdminClient(relay);
      const form = await admin.fetch("/admin/setup?token=bogus");
      assert.equal(form.status, 404);
      await form.body?.cancel();
      const csrf = await admin.csrfOf("/admin/login"); // the same pre-login token
      const statuses = [];
      for (let i = 0; i < 7; i++) {
        const r = await admin.form("/admin/setup", {
          _csrf: csrf,
          token: `bogus-${i}`,
          password: "a long new password",
          confirm: "a long new password",
        });
        statuses.push(r.status);
        await r.body?.cancel();
      }
      assert.deepEqual(statuses, [404, 404, 404, 404, 404, 429, 429]);
      assert.equal(derivations, 0, "no PBKDF2 ran for a bogus token");
    } finally {
      subtle.deriveBits = original;
      await relay.stop();
    }
  },
});

/**
 * @module
 * The page shell: head with the embedded (hashed, long-cached) stylesheet and htmx, a skip link,
 * the main navigation, logout, and the CSRF token htmx sends with every request it makes. Pages
 * work without JavaScript: every action is a plain form.
 */

import type { ComponentChildren } from "preact";

/** What every page's shell needs. */
export type Shell = {
  title: string;
  /** Path of the current section, for `aria-current`. */
  section?: string;
  /** The session's CSRF token; absent on the login and setup pages. */
  csrf?: string;
  assets: { css: string; htmx: string };
};

const NAV: [string, string][] = [
  ["/admin", "Overview"],
  ["/admin/devices", "Devices"],
  ["/admin/groups", "Groups"],
  ["/admin/invites", "Invites"],
  ["/admin/settings", "Settings"],
  ["/admin/audit", "Audit log"],
];

/** The hidden CSRF field every mutating form carries. */
export function Csrf(props: { token: string }) {
  return <input type="hidden" name="_csrf" value={props.token} />;
}

/** A whole page. */
export function Layout(props: Shell & { children: ComponentChildren }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <meta name="htmx-config" content='{"includeIndicatorStyles":false}' />
        <title>{`${props.title} · Sealpost admin`}</title>
        <link rel="stylesheet" href={props.assets.css} />
        <script src={props.assets.htmx} defer></script>
      </head>
      <body hx-headers={props.csrf ? JSON.stringify({ "X-CSRF-Token": props.csrf }) : undefined}>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <span class="brand">Sealpost</span>
          {props.csrf && (
            <nav aria-label="Main">
              <ul>
                {NAV.map(([href, label]) => (
                  <li>
                    <a href={href} aria-current={props.section === href ? "page" : undefined}>
                      {label}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
          )}
          {props.csrf && (
            <form method="post" action="/admin/logout" class="logout">
              <Csrf token={props.csrf} />
              <button type="submit">Log out</button>
            </form>
          )}
        </header>
        <main id="main" tabIndex={-1}>
          {props.children}
        </main>
      </body>
    </html>
  );
}

/** A notice after an action (`role="status"` so screen readers announce it). */
export function Notice(props: { kind?: "ok" | "error"; children: ComponentChildren }) {
  return (
    <p class={`notice ${props.kind ?? "ok"}`} role={props.kind === "error" ? "alert" : "status"}>
      {props.children}
    </p>
  );
}

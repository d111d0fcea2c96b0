/**
 * @module
 * `/join?invite=…`: the public page a registration link (and its QR code) opens. It shows the
 * relay's address and the invite code for the person to enter in their app; apps may also claim
 * such links and read both from the URL. It reveals nothing: the code is the visitor's own.
 */

import type { Hono } from "hono";
import { renderToString } from "preact-render-to-string";
import { ASSET_URLS } from "../assets.ts";
import { Layout } from "../components/layout.tsx";
import type { AdminDeps, AdminEnv } from "../types.ts";

/** The join instructions. */
export function JoinPage(props: { relay: string; code: string }) {
  return (
    <Layout title="Join" assets={ASSET_URLS}>
      <section class="login">
        <h1>Join this Sealpost relay</h1>
        <p>Open your app, choose to join a relay, and enter:</p>
        <dl class="facts">
          <dt>Relay address</dt>
          <dd>
            <code>{props.relay}</code>
          </dd>
          <dt>Invite code</dt>
          <dd>
            <code class="code-box">{props.code || "(none in this link)"}</code>
          </dd>
        </dl>
      </section>
    </Layout>
  );
}

/** Registers `/join` (outside `/admin`: no login). */
export function joinPage(app: Hono<AdminEnv>, deps: AdminDeps): void {
  app.get("/join", (c) => {
    const code = (c.req.query("invite") ?? "").slice(0, 200);
    return c.html(
      "<!doctype html>" + renderToString(<JoinPage relay={deps.config.publicUrl} code={code} />),
      200,
      { "cache-control": "no-store" },
    );
  });
}

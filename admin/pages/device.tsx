/**
 * @module
 * `/admin/devices/:id`: one device — last seen, push target, its account's groups and other
 * devices — and revocation behind a confirmation page (`/admin/devices/:id/revoke`). Revoking
 * publishes the `revoked` bus event, so its live connections close with `4003` on every instance.
 */

import { keyId } from "../../relay/protocol.ts";
import { idParam } from "../params.ts";
import type { Hono } from "hono";
import type { ComponentChildren } from "preact";
import { type DeviceDetail, deviceDetail } from "../queries.ts";
import { adminRevokeDevice } from "../../relay/accounts/devices.ts";
import { ASSET_URLS } from "../assets.ts";
import { clientText, formatAgo, formatTime, shortId } from "../components/format.ts";
import { Csrf, Layout, Notice } from "../components/layout.tsx";
import { Badge, IdLink } from "../components/ui.tsx";
import { AccountGroupTable } from "../components/account_groups.tsx";
import { page } from "../render.ts";
import type { AdminDeps, AdminEnv } from "../types.ts";

/** The device's facts and actions. */
export function DeviceView(
  props: { device: DeviceDetail; now: number; online: boolean; notice?: string },
) {
  const d = props.device;
  const href = `/admin/devices/${encodeURIComponent(d.id)}`;
  return (
    <>
      <h1>Device {d.name ? `“${clientText(d.name)}”` : <code>{shortId(d.id)}</code>}</h1>
      {props.notice && <Notice>{props.notice}</Notice>}
      <dl class="facts">
        <dt>Device id</dt>
        <dd>
          <code>{d.id}</code>
        </dd>
        <dt>Account</dt>
        <dd>
          <IdLink kind="accounts" id={d.account} />
        </dd>
        <dt>Status</dt>
        <dd>
          <Badge status={d.status} />
          {props.online && " · connected now"}
        </dd>
        <dt>Platform</dt>
        <dd>{d.platform ? clientText(d.platform) : "—"}</dd>
        <dt>Registered</dt>
        <dd>{formatTime(d.created_at)}</dd>
        <dt>Last seen</dt>
        <dd>
          {formatTime(d.last_seen_at)} ({formatAgo(d.last_seen_at, props.now)})
        </dd>
        {d.revoked_at !== null && (
          <>
            <dt>Revoked</dt>
            <dd>{formatTime(d.revoked_at)}</dd>
          </>
        )}
        <dt>Push target</dt>
        <dd>{d.push_kind ?? "none"}</dd>
      </dl>
      {d.revoked_at === null && (
        <p>
          <a class="button" href={`${href}/revoke`}>Revoke this device…</a>
        </p>
      )}
      <h2>Groups of its account</h2>
      <AccountGroupTable groups={d.groups} />
      <h2>Other devices of its account</h2>
      <ul>
        {d.siblings.length === 0 && <li>none</li>}
        {d.siblings.map((s) => (
          <li>
            <IdLink kind="devices" id={s.id} /> {clientText(s.name ?? "")}{" "}
            <Badge status={s.status} />
          </li>
        ))}
      </ul>
    </>
  );
}

/** The revocation confirmation. */
export function RevokeConfirm(props: { device: DeviceDetail; csrf: string }) {
  const href = `/admin/devices/${encodeURIComponent(props.device.id)}`;
  return (
    <>
      <h1>Revoke device?</h1>
      <p>
        Device <code>{props.device.id}</code>{" "}
        {props.device.name && `(“${clientText(props.device.name)}”)`}{" "}
        will be refused from now on and its live connections will close. This cannot be undone: the
        device would have to register with a new key.
      </p>
      <form method="post" action={`${href}/revoke`} class="row">
        <Csrf token={props.csrf} />
        <button type="submit" class="danger">Revoke</button>
        <a class="button" href={href}>Cancel</a>
      </form>
    </>
  );
}

/** Registers the device detail and revoke routes. */
export function devicePage(app: Hono<AdminEnv>, deps: AdminDeps): void {
  const shell = (csrf: string, title: string, body: ComponentChildren) => (
    <Layout title={title} section="/admin/devices" csrf={csrf} assets={ASSET_URLS}>{body}</Layout>
  );

  app.get("/devices/:id", async (c) => {
    const device = await deviceDetail(deps, idParam(c, "id", keyId));
    if (!device) {
      return page(c, shell(c.get("session").csrf, "No such device", <h1>No such device</h1>), 404);
    }
    const notice = c.req.query("done") === "revoked"
      ? "Device revoked; its connections were closed."
      : undefined;
    return page(
      c,
      shell(
        c.get("session").csrf,
        "Device",
        <DeviceView
          device={device}
          now={deps.clock.now()}
          online={deps.live.isOnline(device.id)}
          notice={notice}
        />,
      ),
    );
  });

  app.get("/devices/:id/revoke", async (c) => {
    const device = await deviceDetail(deps, idParam(c, "id", keyId));
    const csrf = c.get("session").csrf;
    if (!device) return page(c, shell(csrf, "No such device", <h1>No such device</h1>), 404);
    return page(c, shell(csrf, "Revoke device", <RevokeConfirm device={device} csrf={csrf} />));
  });

  app.post("/devices/:id/revoke", async (c) => {
    const id = idParam(c, "id", keyId);
    const found = await adminRevokeDevice(deps, id, c.get("actor"));
    if (!found) {
      return page(c, shell(c.get("session").csrf, "No such device", <h1>No such device</h1>), 404);
    }
    deps.bus.publish({ kind: "revoked", device: id });
    deps.log.info("device revoked by admin", { device: id, actor: c.get("actor") });
    return c.redirect(`/admin/devices/${encodeURIComponent(id)}?done=revoked`, 303);
  });
}

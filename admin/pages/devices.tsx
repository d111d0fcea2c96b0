/**
 * @module
 * `/admin/devices`: search by device or account id (or name), filter by status and platform.
 * The form works as a plain GET; with htmx the table updates as the admin types.
 */

import type { Hono } from "hono";
import {
  type AdminDeviceStatus,
  DEVICE_STATUSES,
  devicePlatforms,
  searchDevices,
} from "../queries.ts";
import { ASSET_URLS } from "../assets.ts";
import { clientText, statusLabel } from "../components/format.ts";
import { Layout } from "../components/layout.tsx";
import { DeviceRows } from "../partials/device_rows.tsx";
import { fragment, page, wantsFragment } from "../render.ts";
import type { AdminDeps, AdminEnv } from "../types.ts";

const LIMIT = 200;

/** The search form. */
export function DeviceFilters(
  props: { q: string; status: string; platform: string; platforms: string[] },
) {
  return (
    <form
      method="get"
      action="/admin/devices"
      class="row"
      role="search"
      hx-get="/admin/devices"
      hx-target="#device-rows"
      hx-swap="outerHTML"
      hx-push-url="true"
      hx-trigger="input changed delay:300ms from:#q, change from:select, submit"
    >
      <div class="field">
        <label for="q">Device, account or name</label>
        <input id="q" name="q" type="search" value={props.q} autocomplete="off" />
      </div>
      <div class="field">
        <label for="status">Status</label>
        <select id="status" name="status">
          <option value="">any</option>
          {DEVICE_STATUSES.map((s) => (
            <option value={s} selected={props.status === s}>{statusLabel(s)}</option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="platform">Platform</label>
        <select id="platform" name="platform">
          <option value="">any</option>
          {props.platforms.map((p) => (
            <option key={p} value={p} selected={props.platform === p}>{clientText(p)}</option>
          ))}
        </select>
      </div>
      <button type="submit">Search</button>
    </form>
  );
}

/** Registers the device list. */
export function devicesPage(app: Hono<AdminEnv>, deps: AdminDeps): void {
  app.get("/devices", async (c) => {
    const q = c.req.query("q") ?? "";
    const statusParam = c.req.query("status") ?? "";
    const status = (DEVICE_STATUSES as string[]).includes(statusParam)
      ? statusParam as AdminDeviceStatus
      : undefined;
    const platform = c.req.query("platform") ?? "";
    const devices = await searchDevices(deps, {
      q,
      status,
      platform: platform || undefined,
      limit: LIMIT,
    });
    const online = new Set(devices.filter((d) => deps.live.isOnline(d.id)).map((d) => d.id));
    const rows = (
      <DeviceRows devices={devices} now={deps.clock.now()} online={online} limit={LIMIT} />
    );
    if (wantsFragment(c, "device-rows")) return fragment(c, rows);
    return page(
      c,
      <Layout
        title="Devices"
        section="/admin/devices"
        csrf={c.get("session").csrf}
        assets={ASSET_URLS}
      >
        <h1>Devices</h1>
        <DeviceFilters
          q={q}
          status={status ?? ""}
          platform={platform}
          platforms={await devicePlatforms(deps)}
        />
        {rows}
      </Layout>,
    );
  });
}

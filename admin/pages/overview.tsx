/**
 * @module
 * `/admin`: the overview page and its self-refreshing fragment `/admin/partials/overview`.
 */

import type { Hono } from "hono";
import { lastSweep, storageUse, storedCounts } from "../queries.ts";
import { pushOverview } from "../../relay/push/stats.ts";
import { ASSET_URLS } from "../assets.ts";
import { Layout } from "../components/layout.tsx";
import { type OverviewData, OverviewStats } from "../partials/overview_stats.tsx";
import { fragment, page } from "../render.ts";
import type { AdminDeps, AdminEnv } from "../types.ts";

/** Gathers the overview's numbers through the relay's services. */
export async function overviewData(deps: AdminDeps): Promise<OverviewData> {
  const [instances, counts, storage, sweep, history, push] = await Promise.all([
    deps.instances.list(),
    storedCounts(deps),
    storageUse(deps, deps.blobUsage),
    lastSweep(deps),
    deps.history.lastHour(),
    pushOverview(deps),
  ]);
  return {
    now: deps.clock.now(),
    instances,
    devices: counts.devices,
    accounts: counts.accounts,
    groups: counts.groups,
    invitesActive: counts.invites_active,
    storage,
    lastSweep: sweep,
    history,
    push,
    disk: deps.disk?.status()?.reason ?? null,
  };
}

/** Registers the overview routes. */
export function overviewPage(app: Hono<AdminEnv>, deps: AdminDeps): void {
  app.get("/", async (c) => {
    const data = await overviewData(deps);
    return page(
      c,
      <Layout title="Overview" section="/admin" csrf={c.get("session").csrf} assets={ASSET_URLS}>
        <h1>Overview</h1>
        <p class="hint">
          Refreshes every 5 seconds. Metadata only: message bodies are never shown.
        </p>
        <OverviewStats data={data} />
      </Layout>,
    );
  });

  app.get("/partials/overview", async (c) => {
    return fragment(c, <OverviewStats data={await overviewData(deps)} />);
  });
}

/**
 * @module
 * The self-refreshing body of the overview (htmx `every 5s`): instances, live connections,
 * traffic chart, devices by status, groups, storage, sweeper and errors. Pure: the overview page
 * gathers the numbers.
 */

import type { AdminDeviceStatus, AuditEntry, StorageUse } from "../queries.ts";
import type { InstanceInfo } from "../../relay/cluster/instance_directory.ts";
import type { MinuteCounts } from "../metrics_history.ts";
import type { PushOverview } from "../../relay/push/stats.ts";
import { RateChart } from "../components/chart.tsx";
import { PushStats } from "../components/push_stats.tsx";
import {
  formatAgo,
  formatBytes,
  formatRate,
  formatSpan,
  statusLabel,
} from "../components/format.ts";
import { Stat, Table } from "../components/ui.tsx";

/** Everything the overview shows. */
export type OverviewData = {
  now: number;
  instances: InstanceInfo[];
  devices: Record<AdminDeviceStatus, number>;
  accounts: number;
  groups: number;
  invitesActive: number;
  storage: StorageUse;
  lastSweep: AuditEntry | null;
  history: MinuteCounts[];
  push: PushOverview;
  /** Why sends and blob uploads are refused right now (a nearly full disk), or null. */
  disk: string | null;
};

const MINUTE = 60_000;

/** Per-second rates of each minute; the current minute divides by the seconds gone so far. */
function rates(data: OverviewData, key: "messages" | "deliveries"): number[] {
  return data.history.map((m, i) => {
    const last = i === data.history.length - 1;
    const seconds = last ? Math.max(10, (data.now - m.minute) / 1000) : MINUTE / 1000;
    return m[key] / seconds;
  });
}

/** The overview body; its root carries the htmx attributes that refresh it. */
export function OverviewStats(props: { data: OverviewData }) {
  const d = props.data;
  const connections = d.instances.reduce((sum, i) => sum + i.connections, 0);
  const messages = rates(d, "messages");
  const deliveries = rates(d, "deliveries");
  const errors = d.history.reduce((sum, m) => sum + m.errors, 0);
  return (
    <div
      id="overview"
      hx-get="/admin/partials/overview"
      hx-trigger="every 5s"
      hx-swap="outerHTML"
      aria-live="off"
    >
      {d.disk && (
        <p class="notice error" role="alert" data-warning="disk">
          {d.disk}. Free space in the data directory (or raise the disk): writes resume by
          themselves.
        </p>
      )}
      <dl class="stats">
        <Stat name="connections" label="Live connections" value={connections} />
        <Stat
          name="messages_per_s"
          label="Messages/s (this minute)"
          value={formatRate(messages.at(-1) ?? 0)}
        />
        <Stat
          name="deliveries_per_s"
          label="Deliveries/s (this minute)"
          value={formatRate(deliveries.at(-1) ?? 0)}
        />
        <Stat name="devices_active" label="Active devices" value={d.devices.active} />
        <Stat name="devices_inactive" label="Inactive devices" value={d.devices.inactive} />
        <Stat
          name="devices_pending_deletion"
          label={`Devices ${statusLabel("pending_deletion")}`}
          value={d.devices.pending_deletion}
        />
        <Stat name="devices_revoked" label="Revoked devices" value={d.devices.revoked} />
        <Stat name="accounts" label="Accounts" value={d.accounts} />
        <Stat name="groups" label="Groups" value={d.groups} />
        <Stat name="invites_active" label="Usable invites" value={d.invitesActive} />
        <Stat
          name="database_bytes"
          label="Database size"
          value={formatBytes(d.storage.database_bytes)}
        />
        <Stat
          name="blob_bytes"
          label="Blob storage"
          value={d.storage.blob_bytes === null
            ? "not in use"
            : `${formatBytes(d.storage.blob_bytes)} (${d.storage.blob_count} blobs)`}
        />
        <Stat name="errors_hour" label="Server errors (last hour)" value={errors} />
        <Stat
          name="last_sweep"
          label="Sweeper last run"
          value={d.lastSweep ? formatAgo(d.lastSweep.at, d.now) : "not yet"}
        />
        <Stat name="push_queue" label="Push wake-ups queued" value={d.push.queued} />
      </dl>
      {d.lastSweep && (
        <p class="hint">
          Last sweep: {d.lastSweep.action} — <code>{JSON.stringify(d.lastSweep.detail)}</code>
        </p>
      )}

      <h2>Traffic, last hour (this instance)</h2>
      <RateChart
        title="Messages and deliveries per second, last 60 minutes"
        now={d.now}
        series={[
          { label: "Messages", className: "messages", values: messages },
          { label: "Deliveries", className: "deliveries", values: deliveries },
        ]}
      />

      <PushStats push={d.push} />

      <h2>Instances</h2>
      <Table caption={`${d.instances.length} running`}>
        <thead>
          <tr>
            <th scope="col">Instance</th>
            <th scope="col">Region</th>
            <th scope="col">Version</th>
            <th scope="col">Up for</th>
            <th scope="col" class="num">Connections</th>
            <th scope="col">Last report</th>
          </tr>
        </thead>
        <tbody>
          {d.instances.map((i) => (
            <tr data-instance={i.id}>
              <td>
                <code>{i.id}</code>
                {i.self && " (this one)"}
              </td>
              <td>{i.region ?? "—"}</td>
              <td>{i.version}</td>
              <td>{formatSpan(Math.max(0, d.now - i.started_at))}</td>
              <td class="num">{i.connections}</td>
              <td>{formatAgo(i.heartbeat_at, d.now)}</td>
            </tr>
          ))}
        </tbody>
      </Table>
    </div>
  );
}

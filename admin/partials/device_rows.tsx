/**
 * @module
 * The device table of the devices page: swapped in by htmx as the admin types or filters, and
 * rendered inside the full page without JavaScript.
 */

import type { AdminDevice } from "../queries.ts";
import { clientText, formatAgo } from "../components/format.ts";
import { Badge, IdLink, Table } from "../components/ui.tsx";

/** The matching devices (at most `limit`). */
export function DeviceRows(
  props: { devices: AdminDevice[]; now: number; online: Set<string>; limit: number },
) {
  const { devices, now } = props;
  const caption = devices.length >= props.limit
    ? `First ${devices.length} matching devices`
    : `${devices.length} matching device${devices.length === 1 ? "" : "s"}`;
  return (
    <div id="device-rows">
      <Table caption={caption}>
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">Name</th>
            <th scope="col">Platform</th>
            <th scope="col">Account</th>
            <th scope="col">Status</th>
            <th scope="col">Last seen</th>
          </tr>
        </thead>
        <tbody>
          {devices.map((d) => (
            <tr data-device={d.id}>
              <td>
                <IdLink kind="devices" id={d.id} />
                {props.online.has(d.id) && <span class="hint">online</span>}
              </td>
              <td>{d.name ? clientText(d.name) : "—"}</td>
              <td>{d.platform ? clientText(d.platform) : "—"}</td>
              <td>
                <IdLink kind="accounts" id={d.account} />
              </td>
              <td>
                <Badge status={d.status} />
              </td>
              <td>{formatAgo(d.last_seen_at, now)}</td>
            </tr>
          ))}
        </tbody>
      </Table>
    </div>
  );
}

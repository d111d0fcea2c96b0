/**
 * @module
 * The overview's push section: wake-ups waiting in the outbox and, per provider, registered
 * targets and sent/failed/gone counts (cluster-wide, since the database was created). Pure.
 */

import type { PushOverview } from "../../relay/push/stats.ts";
import { Table } from "./ui.tsx";

const NAMES = { webpush: "Web Push", unifiedpush: "UnifiedPush", apns: "APNs", fcm: "FCM" };

/** The push table of the overview. */
export function PushStats(props: { push: PushOverview }) {
  const { push } = props;
  return (
    <>
      <h2>Push wake-ups</h2>
      <Table
        caption={`${push.queued} queued${
          push.retrying ? `, ${push.retrying} awaiting a retry` : ""
        }`}
      >
        <thead>
          <tr>
            <th scope="col">Provider</th>
            <th scope="col" class="num">Targets</th>
            <th scope="col" class="num">Sent</th>
            <th scope="col" class="num">Failed</th>
            <th scope="col" class="num">Gone (removed)</th>
            <th scope="col" class="num">Retries</th>
          </tr>
        </thead>
        <tbody>
          {push.providers.map((p) => (
            <tr data-push-provider={p.provider}>
              <td>{NAMES[p.provider]}</td>
              <td class="num">{p.targets}</td>
              <td class="num" data-push="sent">{p.sent}</td>
              <td class="num" data-push="failed">{p.failed}</td>
              <td class="num">{p.gone}</td>
              <td class="num">{p.retried}</td>
            </tr>
          ))}
        </tbody>
      </Table>
    </>
  );
}

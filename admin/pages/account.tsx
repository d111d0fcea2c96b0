/**
 * @module
 * `/admin/accounts/:id`: an account's devices and groups.
 */

import { keyId } from "../../relay/protocol.ts";
import { idParam } from "../params.ts";
import type { Hono } from "hono";
import { accountDetail } from "../queries.ts";
import { ASSET_URLS } from "../assets.ts";
import { clientText, formatAgo, formatTime } from "../components/format.ts";
import { Layout } from "../components/layout.tsx";
import { Badge, IdLink, Table } from "../components/ui.tsx";
import { AccountGroupTable } from "../components/account_groups.tsx";
import { page } from "../render.ts";
import type { AccountDetail } from "../queries.ts";
import type { AdminDeps, AdminEnv } from "../types.ts";

/** The account's devices and groups. */
export function AccountView(props: { account: AccountDetail; now: number }) {
  const a = props.account;
  return (
    <>
      <h1>Account</h1>
      <dl class="facts">
        <dt>Account id</dt>
        <dd>
          <code>{a.id}</code>
        </dd>
        <dt>Created</dt>
        <dd>{formatTime(a.created_at)}</dd>
      </dl>
      <h2>Devices</h2>
      <Table caption={`${a.devices.length} device${a.devices.length === 1 ? "" : "s"}`}>
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">Name</th>
            <th scope="col">Platform</th>
            <th scope="col">Status</th>
            <th scope="col">Last seen</th>
          </tr>
        </thead>
        <tbody>
          {a.devices.map((d) => (
            <tr>
              <td>
                <IdLink kind="devices" id={d.id} />
              </td>
              <td>{d.name ? clientText(d.name) : "—"}</td>
              <td>{d.platform ? clientText(d.platform) : "—"}</td>
              <td>
                <Badge status={d.status} />
              </td>
              <td>{formatAgo(d.last_seen_at, props.now)}</td>
            </tr>
          ))}
        </tbody>
      </Table>
      <h2>Groups</h2>
      <AccountGroupTable groups={a.groups} />
    </>
  );
}

/** Registers the account page. */
export function accountPage(app: Hono<AdminEnv>, deps: AdminDeps): void {
  app.get("/accounts/:id", async (c) => {
    const account = await accountDetail(deps, idParam(c, "id", keyId));
    const csrf = c.get("session").csrf;
    return page(
      c,
      <Layout title="Account" section="/admin/devices" csrf={csrf} assets={ASSET_URLS}>
        {account
          ? <AccountView account={account} now={deps.clock.now()} />
          : <h1>No such account</h1>}
      </Layout>,
      account ? 200 : 404,
    );
  });
}

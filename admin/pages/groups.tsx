/**
 * @module
 * `/admin/groups`: groups with members, message count and stored bytes; search by group id or
 * member account.
 */

import type { Hono } from "hono";
import { type AdminGroup, listGroupsForAdmin } from "../queries.ts";
import { formatDurationS } from "../../relay/config/runtime.ts";
import { ASSET_URLS } from "../assets.ts";
import { formatBytes, formatTime } from "../components/format.ts";
import { Layout } from "../components/layout.tsx";
import { IdLink, Table } from "../components/ui.tsx";
import { page } from "../render.ts";
import type { AdminDeps, AdminEnv } from "../types.ts";

/** Retention as admins read it. */
export function retentionText(seconds: number): string {
  return seconds === 0 ? "forever" : formatDurationS(seconds);
}

/** The group table. */
export function GroupTable(props: { groups: AdminGroup[] }) {
  return (
    <Table caption={`${props.groups.length} group${props.groups.length === 1 ? "" : "s"}`}>
      <thead>
        <tr>
          <th scope="col">Group</th>
          <th scope="col" class="num">Members</th>
          <th scope="col" class="num">Messages</th>
          <th scope="col" class="num">Bytes</th>
          <th scope="col" class="num">Last seq</th>
          <th scope="col">Retention</th>
          <th scope="col">Created</th>
        </tr>
      </thead>
      <tbody>
        {props.groups.map((g) => (
          <tr data-group={g.id}>
            <td>
              <IdLink kind="groups" id={g.id} />
            </td>
            <td class="num">{g.members}</td>
            <td class="num">{g.messages}</td>
            <td class="num">{formatBytes(g.bytes)}</td>
            <td class="num">{g.last_seq}</td>
            <td>{retentionText(g.retention_s)}</td>
            <td>{formatTime(g.created_at)}</td>
          </tr>
        ))}
      </tbody>
    </Table>
  );
}

/** Registers the group list. */
export function groupsPage(app: Hono<AdminEnv>, deps: AdminDeps): void {
  app.get("/groups", async (c) => {
    const q = c.req.query("q") ?? "";
    const groups = await listGroupsForAdmin(deps, { q, limit: 200 });
    return page(
      c,
      <Layout
        title="Groups"
        section="/admin/groups"
        csrf={c.get("session").csrf}
        assets={ASSET_URLS}
      >
        <h1>Groups</h1>
        <form method="get" action="/admin/groups" class="row" role="search">
          <div class="field">
            <label for="q">Group or member account id</label>
            <input id="q" name="q" type="search" value={q} autocomplete="off" />
          </div>
          <button type="submit">Search</button>
        </form>
        {c.req.query("done") === "deleted" && <p class="notice" role="status">Group deleted.</p>}
        <GroupTable groups={groups} />
      </Layout>,
    );
  });
}

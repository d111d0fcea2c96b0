/**
 * @module
 * `/admin/groups/:id`: members, message count and bytes, retention edit, and deletion behind a
 * confirmation page (`/admin/groups/:id/delete`). Deleting purges the messages and tells the
 * members' devices (`deleted` event).
 */

import { groupId } from "../../relay/protocol.ts";
import { idParam } from "../params.ts";
import type { Hono } from "hono";
import type { ComponentChildren, VNode } from "preact";
import { type GroupDetail, groupDetail } from "../queries.ts";
import { adminDeleteGroup, adminSetRetention } from "../../relay/accounts/groups.ts";
import { parseRuntimeValue } from "../../relay/config/runtime.ts";
import { RelayError } from "../../relay/errors.ts";
import { ASSET_URLS } from "../assets.ts";
import { formatBytes, formatTime } from "../components/format.ts";
import { Csrf, Layout, Notice } from "../components/layout.tsx";
import { IdLink, Table } from "../components/ui.tsx";
import { page } from "../render.ts";
import { formFields } from "../session.ts";
import type { AdminDeps, AdminEnv } from "../types.ts";
import { retentionText } from "./groups.tsx";

/** The group's facts, members and actions. */
export function GroupView(
  props: { group: GroupDetail; csrf: string; notice?: string; error?: string },
) {
  const g = props.group;
  const href = `/admin/groups/${encodeURIComponent(g.id)}`;
  return (
    <>
      <h1>Group</h1>
      {props.notice && <Notice>{props.notice}</Notice>}
      {props.error && <Notice kind="error">{props.error}</Notice>}
      <dl class="facts">
        <dt>Group id</dt>
        <dd>
          <code>{g.id}</code>
        </dd>
        <dt>Created</dt>
        <dd>{formatTime(g.created_at)}</dd>
        <dt>Messages stored</dt>
        <dd data-stat="messages">{g.messages}</dd>
        <dt>Bytes stored</dt>
        <dd data-stat="bytes">{formatBytes(g.bytes)}</dd>
        <dt>Last seq</dt>
        <dd>{g.last_seq}</dd>
        <dt>Retention</dt>
        <dd data-stat="retention">{retentionText(g.retention_s)}</dd>
      </dl>
      <form method="post" action={`${href}/retention`} class="row">
        <Csrf token={props.csrf} />
        <div class="field">
          <label for="retention">New retention</label>
          <input
            id="retention"
            name="retention"
            required
            value={retentionText(g.retention_s)}
            aria-describedby="retention-hint"
          />
          <p class="hint" id="retention-hint">
            Like 7d, 12h or 90m; 0 keeps messages until deleted where the server allows it. Applies
            to new messages.
          </p>
        </div>
        <button type="submit">Change retention</button>
      </form>
      <h2>Members</h2>
      <Table caption={`${g.member_list.length} member${g.member_list.length === 1 ? "" : "s"}`}>
        <thead>
          <tr>
            <th scope="col">Account</th>
            <th scope="col">Role</th>
            <th scope="col" class="num">Devices</th>
            <th scope="col">Added</th>
          </tr>
        </thead>
        <tbody>
          {g.member_list.map((m) => (
            <tr>
              <td>
                <IdLink kind="accounts" id={m.account} />
              </td>
              <td>{m.role}</td>
              <td class="num">{m.devices}</td>
              <td>{formatTime(m.added_at)}</td>
            </tr>
          ))}
        </tbody>
      </Table>
      <p>
        <a class="button" href={`${href}/delete`}>Delete this group…</a>
      </p>
    </>
  );
}

/** The deletion confirmation. */
export function DeleteConfirm(props: { group: GroupDetail; csrf: string }) {
  const href = `/admin/groups/${encodeURIComponent(props.group.id)}`;
  return (
    <>
      <h1>Delete group?</h1>
      <p>
        Group <code>{props.group.id}</code> with {props.group.member_list.length} members and{" "}
        {props.group.messages} stored messages will be deleted for everyone. This cannot be undone.
      </p>
      <form method="post" action={`${href}/delete`} class="row">
        <Csrf token={props.csrf} />
        <button type="submit" class="danger">Delete group</button>
        <a class="button" href={href}>Cancel</a>
      </form>
    </>
  );
}

/** Registers the group detail, retention and delete routes. */
export function groupPage(app: Hono<AdminEnv>, deps: AdminDeps): void {
  const shell = (
    csrf: string,
    title: string,
    body: ComponentChildren,
    status = 200,
  ): [VNode, number] => {
    const tree = (
      <Layout title={title} section="/admin/groups" csrf={csrf} assets={ASSET_URLS}>
        {body}
      </Layout>
    );
    return [tree, status];
  };
  const missing = (csrf: string) => shell(csrf, "No such group", <h1>No such group</h1>, 404);

  app.get("/groups/:id", async (c) => {
    const csrf = c.get("session").csrf;
    const group = await groupDetail(deps, idParam(c, "id", groupId));
    if (!group) return page(c, ...missing(csrf));
    const notice = c.req.query("done") === "retention" ? "Retention changed." : undefined;
    return page(
      c,
      ...shell(csrf, "Group", <GroupView group={group} csrf={csrf} notice={notice} />),
    );
  });

  app.post("/groups/:id/retention", async (c) => {
    const id = idParam(c, "id", groupId);
    const csrf = c.get("session").csrf;
    const form = await formFields(c);
    try {
      const seconds = parseRuntimeValue("retention_s", form.retention ?? "");
      const stored = await adminSetRetention(deps, id, seconds, c.get("actor"));
      if (stored === null) return page(c, ...missing(csrf));
    } catch (error) {
      if (!(error instanceof RelayError)) throw error;
      const group = await groupDetail(deps, id);
      if (!group) return page(c, ...missing(csrf));
      return page(
        c,
        ...shell(csrf, "Group", <GroupView group={group} csrf={csrf} error={error.message} />, 400),
      );
    }
    return c.redirect(`/admin/groups/${encodeURIComponent(id)}?done=retention`, 303);
  });

  app.get("/groups/:id/delete", async (c) => {
    const csrf = c.get("session").csrf;
    const group = await groupDetail(deps, idParam(c, "id", groupId));
    if (!group) return page(c, ...missing(csrf));
    return page(c, ...shell(csrf, "Delete group", <DeleteConfirm group={group} csrf={csrf} />));
  });

  app.post("/groups/:id/delete", async (c) => {
    const id = idParam(c, "id", groupId);
    if (!(await adminDeleteGroup(deps, id, c.get("actor")))) {
      return page(c, ...missing(c.get("session").csrf));
    }
    deps.log.info("group deleted by admin", { group: id, actor: c.get("actor") });
    return c.redirect("/admin/groups?done=deleted", 303);
  });
}

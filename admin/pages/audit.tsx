/**
 * @module
 * `/admin/audit`: every admin action and settings change — who, what, when, before and after —
 * newest first, paged by id, filterable by action prefix.
 */

import type { Hono } from "hono";
import { type AuditEntry, listAudit } from "../queries.ts";
import { ASSET_URLS } from "../assets.ts";
import { clientText, formatTime } from "../components/format.ts";
import { Layout } from "../components/layout.tsx";
import { Table } from "../components/ui.tsx";
import { page } from "../render.ts";
import type { AdminDeps, AdminEnv } from "../types.ts";

const PAGE = 100;

function value(v: unknown): string {
  return v === undefined ? "—" : clientText(typeof v === "string" ? v : JSON.stringify(v));
}

/** The audit table. */
export function AuditView(
  props: { entries: AuditEntry[]; action: string; sweeps: boolean; next?: number },
) {
  return (
    <>
      <h1>Audit log</h1>
      <form method="get" action="/admin/audit" class="row" role="search">
        <div class="field">
          <label for="action">Action starts with</label>
          <input id="action" name="action" value={props.action} placeholder="setting." />
        </div>
        <label class="choice">
          <input type="checkbox" name="sweeps" value="1" checked={props.sweeps} /> Show sweeper runs
        </label>
        <button type="submit">Filter</button>
      </form>
      <Table caption={`${props.entries.length} entries`}>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">What</th>
            <th scope="col">Before</th>
            <th scope="col">After</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {props.entries.map((e) => {
            const { before, after, ...rest } = e.detail;
            return (
              <tr data-audit={e.action}>
                <td>{formatTime(e.at)}</td>
                <td>
                  <code>{e.actor}</code>
                </td>
                <td>{e.action}</td>
                <td>{value(before)}</td>
                <td>{value(after)}</td>
                <td>
                  {Object.keys(rest).length > 0 && <code>{clientText(JSON.stringify(rest))}</code>}
                </td>
              </tr>
            );
          })}
        </tbody>
      </Table>
      {props.next !== undefined && (
        <p>
          <a
            href={`/admin/audit?before=${props.next}${
              props.action ? `&action=${encodeURIComponent(props.action)}` : ""
            }${props.sweeps ? "&sweeps=1" : ""}`}
          >
            Older entries
          </a>
        </p>
      )}
    </>
  );
}

/** Registers the audit page. */
export function auditPage(app: Hono<AdminEnv>, deps: AdminDeps): void {
  app.get("/audit", async (c) => {
    const action = c.req.query("action") ?? "";
    const before = Number(c.req.query("before"));
    const sweeps = c.req.query("sweeps") === "1";
    const entries = await listAudit(deps, {
      action: action || undefined,
      before: Number.isInteger(before) && before > 0 ? before : undefined,
      limit: PAGE,
      withoutSweeps: !sweeps && !action,
    });
    const next = entries.length === PAGE ? entries.at(-1)!.id : undefined;
    return page(
      c,
      <Layout
        title="Audit log"
        section="/admin/audit"
        csrf={c.get("session").csrf}
        assets={ASSET_URLS}
      >
        <AuditView entries={entries} action={action} sweeps={sweeps} next={next} />
      </Layout>,
    );
  });
}

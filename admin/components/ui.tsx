/**
 * @module
 * Small pure building blocks of the dashboard: status badges, stat tiles, id links.
 */

import type { ComponentChildren } from "preact";
import { shortId, statusLabel } from "./format.ts";

/** A device or invite status as a badge (text, not colour alone). */
export function Badge(props: { status: string }) {
  return <span class={`badge ${props.status}`}>{statusLabel(props.status)}</span>;
}

/** One number of the overview, with a stable `data-stat` name tests and scripts can read. */
export function Stat(props: { name: string; label: string; value: ComponentChildren }) {
  return (
    <div class="stat" data-stat={props.name}>
      <dt>{props.label}</dt>
      <dd>{props.value}</dd>
    </div>
  );
}

/** A link to a device, account or group page showing a shortened id. */
export function IdLink(props: { kind: "devices" | "accounts" | "groups"; id: string }) {
  return (
    <a href={`/admin/${props.kind}/${encodeURIComponent(props.id)}`} title={props.id}>
      <code>{shortId(props.id)}</code>
    </a>
  );
}

/** A table that scrolls sideways on a phone instead of overflowing the page. */
export function Table(props: { caption: string; children: ComponentChildren }) {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label={props.caption}>
      <table>
        <caption>{props.caption}</caption>
        {props.children}
      </table>
    </div>
  );
}

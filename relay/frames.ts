/**
 * @module
 * What each client frame does once a connection is authenticated and the frame parsed
 * (PROTOCOL.md "WebSocket"): `ping` → `pong`, `sub`/`unsub` through the hub, `ack` to the cursor
 * store, `presence` → the group's online devices (only members who accepted; none when presence
 * is off), `accept` → `accepted` (issue 16), `send` through the shared send path → `sent`.
 * A frame that fails throws; `connect.ts` turns that into an `error` frame echoing its `ref`.
 */

import type { CursorStore } from "./ack.ts";
import { acceptMembership } from "./accounts/groups.ts";
import { acceptedIn } from "./accounts/consent.ts";
import type { InstanceRegistry } from "./cluster/instances.ts";
import type { Connection } from "./connection.ts";
import { RelayError } from "./errors.ts";
import type { Hub } from "./hub.ts";
import type { ClientFrame, Ref, ServerFrame } from "./protocol.ts";
import { send, type SendDeps } from "./send.ts";
import { withSpan } from "./base/trace.ts";

/** What the frame handlers need. */
export type FrameDeps = SendDeps & {
  hub: Hub;
  cursors: CursorStore;
  registry: InstanceRegistry;
};

/**
 * Runs one client frame on an authenticated connection; `replyError` sends an `error` frame
 * for a problem that does not fail the whole frame (a refused group of a `sub`).
 */
export async function handleFrame(
  deps: FrameDeps,
  conn: Connection,
  frame: ClientFrame,
  replyError: (error: RelayError, ref?: Ref) => void,
): Promise<void> {
  switch (frame.t) {
    case "ping":
      conn.sendJson(frame.ref === undefined ? { t: "pong" } : { t: "pong", ref: frame.ref });
      return;
    case "sub": {
      if (frame.batch === true) conn.batch = true;
      const refused = await deps.hub.subscribe(
        conn,
        frame.groups,
        frame.since,
        frame.presence === true,
      );
      for (const group of refused) {
        replyError(new RelayError("not_found", `No such group: ${group}`), frame.ref);
      }
      return;
    }
    case "unsub":
      deps.hub.unsubscribe(conn, frame.groups);
      return;
    case "ack": {
      requireGroup(conn, frame.group);
      // Clamped now, not only when the buffered ack is written: until then reads merge it, and a
      // cursor never shows past the group's last_seq. The subscription knows what it delivered;
      // an ack beyond that (or without a subscription) asks the database.
      const delivered = conn.subs.get(frame.group)?.last ?? 0;
      const seq = frame.seq <= delivered
        ? frame.seq
        : Math.min(frame.seq, await lastSeqOf(deps, frame.group));
      deps.cursors.ack(conn.device, frame.group, seq);
      return;
    }
    case "presence":
      conn.sendJson(await presenceAnswer(deps, conn, frame.group, frame.ref));
      return;
    case "accept":
      requireGroup(conn, frame.group);
      await acceptMembership(deps, frame.group, conn.account);
      conn.sendJson(
        frame.ref === undefined
          ? { t: "accepted", group: frame.group }
          : { t: "accepted", group: frame.group, ref: frame.ref },
      );
      return;
    case "send":
      // Returned, not awaited (see sendAnswer).
      return sendAnswer(deps, conn, frame).then((reply) => void conn.sendJson(reply));
  }
}

/** The group's latest seq (0 for a group that is gone). */
async function lastSeqOf(deps: FrameDeps, group: string): Promise<number> {
  const row = await deps.db.selectFrom("groups").select("last_seq").where("id", "=", group)
    .executeTakeFirst();
  return row ? Number(row.last_seq) : 0;
}

function requireGroup(conn: Connection, group: string): void {
  if (!conn.groups.has(group)) throw new RelayError("not_found", "No such group");
}

/** The devices of a group online now, here or on another instance. */
async function presenceAnswer(
  deps: FrameDeps,
  conn: Connection,
  group: string,
  ref: Ref | undefined,
): Promise<ServerFrame> {
  requireGroup(conn, group);
  const online = deps.config.presence === "off" ? [] : [
    ...new Set([
      ...deps.hub.onlineDevicesOf(await acceptedIn(deps, group)),
      ...await deps.registry.onlineElsewhere(group),
    ]),
  ];
  return ref === undefined
    ? { t: "presence", group, online }
    : { t: "presence", group, online, ref };
}

/**
 * Sends the frame's message and builds the `sent` reply. Chained rather than awaited: the send
 * waits in the commit queue, and a suspended async function would hold its frame meanwhile.
 */
function sendAnswer(
  deps: FrameDeps,
  conn: Connection,
  frame: Extract<ClientFrame, { t: "send" }>,
): Promise<ServerFrame> {
  const { t: _t, ref, group, ...body } = frame;
  return withSpan(
    "sealpost.send",
    { "sealpost.group": group, "sealpost.ephemeral": body.ephemeral === true },
    (span) =>
      send(
        deps,
        { account: conn.account, device: conn.device },
        group,
        body,
        conn.invited.has(group),
      ).then((sent) => {
        const reply: Extract<ServerFrame, { t: "sent" }> = { t: "sent", group };
        if (ref !== undefined) reply.ref = ref;
        if (sent.ephemeral) reply.delivered = sent.delivered;
        else {
          span.setAttribute("sealpost.seq", sent.seq);
          reply.seq = sent.seq;
          reply.created_at = sent.created_at;
          reply.expires_at = sent.expires_at;
        }
        return reply;
      }),
  );
}

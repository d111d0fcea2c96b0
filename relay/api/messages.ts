/**
 * @module
 * Routes of PROTOCOL.md "Messages" over HTTP: send, read a group's page, the inbox (with
 * long-poll) and ack.
 */

import { Hono } from "hono";
import type { CursorStore } from "../ack.ts";
import { invalid, RelayError } from "../errors.ts";
import { groupsOf, roleIn } from "../accounts/groups.ts";
import type { InboxWaiters } from "../inbox.ts";
import { readInbox } from "../messages.ts";
import type { BacklogReader } from "../backlog.ts";
import { AckBody, SendBody } from "../protocol.ts";
import type { RateLimiter } from "../rate_limit.ts";
import { send, type SendDeps } from "../send.ts";
import { type ApiEnv, type Auth, readBody } from "./context.ts";
import { groupParam } from "./groups.ts";

/** What the message routes need. */
export type MessageDeps = SendDeps & {
  cursors: CursorStore;
  waiters: InboxWaiters;
  pollLimit: RateLimiter;
  /** Replica-aware backlog reads. */
  read: BacklogReader;
};

function intParam(
  value: string | undefined,
  name: string,
  min: number,
  max: number,
  fallback: number,
) {
  if (value === undefined || value === "") return fallback;
  if (!/^\d+$/.test(value)) throw invalid(`${name}: must be a whole number from ${min} to ${max}`);
  const n = Number(value);
  if (n < min || n > max) throw invalid(`${name}: must be a whole number from ${min} to ${max}`);
  return n;
}

/** The message routes (mounted under `/v1`). */
export function messageRoutes(deps: MessageDeps, auth: Auth): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post("/groups/:id/messages", auth, async (c) => {
    const group = groupParam(c.req.param("id"));
    const body = await readBody(c, SendBody);
    const sent = await send(deps, c.get("principal"), group, body);
    if (sent.ephemeral) return c.json({ delivered: sent.delivered }, 202);
    const { seq, created_at, expires_at } = sent;
    return c.json({ seq, created_at, expires_at }, sent.duplicate ? 200 : 201);
  });

  app.get("/groups/:id/messages", auth, async (c) => {
    const group = groupParam(c.req.param("id"));
    const after = intParam(c.req.query("after"), "after", 0, Number.MAX_SAFE_INTEGER, 0);
    const limit = intParam(c.req.query("limit"), "limit", 1, 1000, 100);
    const principal = c.get("principal");
    await roleIn(deps, group, principal.account);
    const page = await deps.read(group, principal.device, after, limit, deps.clock.now(), after);
    return c.json(page);
  });

  app.get("/inbox", auth, async (c) => {
    const principal = c.get("principal");
    const wait = intParam(c.req.query("wait"), "wait", 0, 30, 0);
    const limit = intParam(c.req.query("limit"), "limit", 1, 1000, 100);
    deps.pollLimit.check(principal.device, "inbox polls");
    const read = () =>
      readInbox(
        deps.db,
        principal.account,
        principal.device,
        limit,
        deps.clock.now(),
        deps.cursors.pending(principal.device),
      );
    let messages = await read();
    if (messages.length === 0 && wait > 0) {
      const groups = await groupsOf(deps, principal.account);
      const waiter = deps.waiters.wait(principal.account, groups, wait * 1000);
      messages = await read();
      if (messages.length === 0) {
        await waiter.woken;
        messages = await read();
      } else waiter.cancel();
    }
    return c.json({ messages });
  });

  app.post("/ack", auth, async (c) => {
    const principal = c.get("principal");
    const body = await readBody(c, AckBody);
    const entries = Object.entries(body.cursors);
    if (entries.length > 10_000) throw invalid("cursors: at most 10000 groups per ack");
    const mine = new Set(await groupsOf(deps, principal.account));
    for (const [group] of entries) {
      if (!mine.has(group)) throw new RelayError("not_found", `No such group: ${group}`);
    }
    await deps.cursors.write(
      entries.map(([group, seq]) => ({ device: principal.device, group, seq })),
    );
    return c.body(null, 204);
  });

  return app;
}

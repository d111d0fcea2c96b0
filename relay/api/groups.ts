/**
 * @module
 * Routes of PROTOCOL.md "Groups": create, list, read, accept an invitation, add/change member,
 * remove member (or decline), delete.
 */

import { Hono } from "hono";
import type { Deps } from "../deps.ts";
import { notFound } from "../errors.ts";
import {
  acceptGroup,
  createGroup,
  deleteGroup,
  getGroup,
  listGroups,
  putMember,
  removeMember,
} from "../accounts/groups.ts";
import { isKeyId } from "../base/keys.ts";
import { CreateGroupBody, PutMemberBody } from "../protocol.ts";
import { type ApiEnv, type Auth, readBody } from "./context.ts";

/** A group id path parameter, or 404 for anything that cannot be one. */
export function groupParam(value: string): string {
  if (!/^[A-Za-z0-9_-]{22}$/.test(value)) throw notFound("No such group");
  return value;
}

/** The group routes (mounted under `/v1`). */
export function groupRoutes(
  deps: Deps,
  auth: Auth,
  pendingCursors: (device: string) => Map<string, number>,
): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.post("/groups", auth, async (c) => {
    const body = await readBody(c, CreateGroupBody);
    return c.json(await createGroup(deps, c.get("principal"), body), 201);
  });
  app.get("/groups", auth, async (c) => {
    const principal = c.get("principal");
    const pending = pendingCursors(principal.device);
    return c.json({ groups: await listGroups(deps, principal, (g) => pending.get(g)) });
  });
  app.get("/groups/:id", auth, async (c) => {
    return c.json(await getGroup(deps, c.get("principal"), groupParam(c.req.param("id"))));
  });
  app.post("/groups/:id/accept", auth, async (c) => {
    return c.json(await acceptGroup(deps, c.get("principal"), groupParam(c.req.param("id"))));
  });
  app.put("/groups/:id/members/:account", auth, async (c) => {
    const id = groupParam(c.req.param("id"));
    const account = c.req.param("account");
    const body = await readBody(c, PutMemberBody);
    if (!isKeyId(account)) {
      await getGroup(deps, c.get("principal"), id); // non-members still get 404 for the group
      throw notFound("No such account");
    }
    return c.json(await putMember(deps, c.get("principal"), id, account, body.role), 200);
  });
  app.delete("/groups/:id/members/:account", auth, async (c) => {
    const id = groupParam(c.req.param("id"));
    await removeMember(deps, c.get("principal"), id, c.req.param("account"));
    return c.body(null, 204);
  });
  app.delete("/groups/:id", auth, async (c) => {
    await deleteGroup(deps, c.get("principal"), groupParam(c.req.param("id")));
    return c.body(null, 204);
  });
  return app;
}

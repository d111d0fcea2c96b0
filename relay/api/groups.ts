/**
 * @module
 * Routes of PROTOCOL.md "Groups": create, list, read, accept an invitation, add/change member,
 * remove member (or decline), delete.
 */

import { type Context, Hono } from "hono";
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
import { CreateGroupBody, groupId, keyId, PutCapabilityBody, PutMemberBody } from "../protocol.ts";
import { setSendVerifier } from "../accounts/send_capability.ts";
import { type ApiEnv, type Auth, readBody } from "./context.ts";

/** A group id path parameter (the `groupId` schema), or 404 for anything that cannot be one. */
export function groupParam(value: string): string {
  if (!groupId.safeParse(value).success) throw notFound("No such group");
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
  /** The `:account` of a member route; for one that cannot be an account id, non-members still
   * get 404 for the group, members 404 for the account. */
  const memberParam = async (c: Context<ApiEnv>, id: string): Promise<string> => {
    const account = c.req.param("account") ?? "";
    if (keyId.safeParse(account).success) return account;
    await getGroup(deps, c.get("principal"), id);
    throw notFound("No such account");
  };
  app.put("/groups/:id/send_capability", auth, async (c) => {
    const body = await readBody(c, PutCapabilityBody);
    const id = groupParam(c.req.param("id"));
    await setSendVerifier(deps, c.get("principal"), id, body.verifier);
    return c.body(null, 204);
  });
  app.delete("/groups/:id/send_capability", auth, async (c) => {
    await setSendVerifier(deps, c.get("principal"), groupParam(c.req.param("id")), null);
    return c.body(null, 204);
  });
  app.put("/groups/:id/members/:account", auth, async (c) => {
    const id = groupParam(c.req.param("id"));
    const body = await readBody(c, PutMemberBody);
    const account = await memberParam(c, id);
    return c.json(await putMember(deps, c.get("principal"), id, account, body.role), 200);
  });
  app.delete("/groups/:id/members/:account", auth, async (c) => {
    const id = groupParam(c.req.param("id"));
    const account = await memberParam(c, id);
    await removeMember(deps, c.get("principal"), id, account);
    return c.body(null, 204);
  });
  app.delete("/groups/:id", auth, async (c) => {
    await deleteGroup(deps, c.get("principal"), groupParam(c.req.param("id")));
    return c.body(null, 204);
  });
  return app;
}

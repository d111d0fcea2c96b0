/**
 * @module
 * The send path shared by HTTP and WebSocket: validate the body, enforce the size limit and the
 * per-device send rate, then either relay an ephemeral message to connected devices or hand a
 * durable one to group commit, which answers once it is committed. A member's first send in a
 * group it was only invited to accepts the invitation (issue 16).
 */

import type { Principal } from "./authenticate.ts";
import type { BlobPolicy } from "./blobs/policy.ts";
import type { Deps } from "./deps.ts";
import { base64UrlDecodedLength, fromBase64Url, randomId, toHex } from "./base/encoding.ts";
import { invalid, notFound, RelayError } from "./errors.ts";
import type { Hub } from "./hub.ts";
import type { GroupCommit, SendResult } from "./persist.ts";
import type { SealedSendBody, SendBody } from "./protocol.ts";
import type { RateLimiter } from "./rate_limit.ts";
import { acceptMembership, announceAccepted } from "./accounts/groups.ts";

/** What the send path needs. */
export type SendDeps = Deps & {
  commit: GroupCommit;
  hub: Hub;
  sendLimit: RateLimiter;
  instanceId: string;
  /** Blob rules, for sends that reference a blob (without them such sends get 404). */
  blobs?: BlobPolicy;
  /** Whether `account` is a member of `group` (the caller may know from its connection). */
  isMember(group: string, account: string): Promise<boolean>;
};

async function isInvited(deps: Deps, group: string, account: string): Promise<boolean> {
  const row = await deps.db.selectFrom("group_members").select("state")
    .where("group_id", "=", group).where("account_id", "=", account).executeTakeFirst();
  return row?.state === "invited";
}

/** The outcome of a send. */
export type Sent =
  | ({ ephemeral: false } & SendResult)
  | { ephemeral: true; delivered: number };

/**
 * Sends one message to `group` as `from`.
 *
 * @example
 * ```ts
 * const sent = await send(deps, principal, group, { body: "AAEC", client_id: "m1" });
 * ```
 *
 * `invited` says whether the sender's account is still only invited to the group, when the
 * caller knows (a WebSocket connection does). Otherwise (HTTP) a durable send accepts an
 * invitation in its commit (`accept`, migration 0010: no round trip before it) and an ephemeral
 * one looks it up.
 */
export function send(
  deps: SendDeps,
  from: Principal,
  group: string,
  body: SendBody,
  invited?: boolean,
): Promise<Sent> {
  // Chained, not awaited: a send waits in the commit queue, and a suspended async function
  // would hold its frame meanwhile (bench/README.md "Overload memory, a third look").
  return sendUnchecked(deps, from, group, body, invited).catch((error) => {
    const reason = error instanceof RelayError ? error.code : "internal";
    deps.metrics.messagesRejected.inc({ reason });
    throw error;
  });
}

/** Throws unless `body` is canonical base64url of at most `max_message_bytes` decoded. */
function checkBodySize(deps: Deps, body: string): void {
  // The schema already checked the alphabet; a length of 4n+1 is not base64url. The size is
  // known from the length, so the body is never decoded here (Postgres stores it as bytes).
  if (body.length % 4 === 1) throw invalid("body: must be base64url without padding");
  const size = base64UrlDecodedLength(body);
  if (size > deps.config.maxMessageBytes) {
    throw new RelayError(
      "too_large",
      `The body is ${size} bytes; the limit is ${deps.config.maxMessageBytes} (use a blob)`,
    );
  }
}

/** A stored message grows the embedded database: none while the disk is below its reserve. */
function assertRoomToStore(deps: Deps): void {
  if (deps.dbKind === "pglite") deps.disk?.assertRoom();
}

/** The hex SHA-256 of a send capability (base64url): what a group's `send_verifier` holds. */
async function capabilityVerifier(capability: string): Promise<string> {
  const bytes = new Uint8Array(fromBase64Url(capability) ?? []);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return toHex(digest);
}

/**
 * A sealed send (issue 16): stored and delivered with no sender, allowed by the group's send
 * capability instead of membership. After the size check, `admit` applies the caller's rate
 * limits (per address, then per capability `verifier`), so, as for normal sends, they count only
 * sends that pass validation and the size check; a refusal of either is counted in
 * `messages_rejected` like any other. A wrong or rotated-out capability answers `404`, as for a
 * group that does not exist. Idempotent by `client_id` per group.
 */
export async function sendSealed(
  deps: SendDeps,
  group: string,
  body: SealedSendBody,
  admit: (verifier: string) => void,
): Promise<SendResult> {
  try {
    checkBodySize(deps, body.body);
    const verifier = await capabilityVerifier(body.cap);
    admit(verifier);
    assertRoomToStore(deps);
    return await deps.commit.submit({
      group,
      account: null,
      device: null,
      sealedVerifier: verifier,
      clientId: body.client_id ?? randomId(12),
      bodyText: body.body,
      ttlS: body.ttl_s,
      to: body.to,
    });
  } catch (error) {
    deps.metrics.messagesRejected.inc({
      reason: error instanceof RelayError ? error.code : "internal",
    });
    throw error;
  }
}

async function sendUnchecked(
  deps: SendDeps,
  from: Principal,
  group: string,
  body: SendBody,
  invited: boolean | undefined,
): Promise<Sent> {
  checkBodySize(deps, body.body);
  if (body.blob !== undefined && !body.ephemeral && !deps.blobs) {
    throw notFound("No such blob");
  }
  deps.sendLimit.check(from.device, "sends");
  if (invited ?? (body.ephemeral && await isInvited(deps, group, from.account))) {
    await acceptMembership(deps, group, from.account);
  }

  if (body.ephemeral) {
    if (!(await deps.isMember(group, from.account))) throw notFound("No such group");
    const event = {
      kind: "eph" as const,
      origin: deps.instanceId,
      group,
      from,
      body: body.body,
      ...(body.to ? { to: body.to } : {}),
    };
    const delivered = deps.hub.deliverEphemeral(event);
    deps.metrics.ephemeralSent.inc();
    deps.bus.publish(event);
    return { ephemeral: true, delivered };
  }

  assertRoomToStore(deps);
  const blob = body.blob === undefined || !deps.blobs
    ? undefined
    : await deps.blobs.attach(from, body.blob, group);
  // Returned, not awaited: nothing of this function is held while the send is queued.
  return deps.commit.submit({
    group,
    account: from.account,
    device: from.device,
    clientId: body.client_id ?? randomId(12),
    bodyText: body.body,
    ttlS: body.ttl_s,
    to: body.to,
    blob,
    accept: invited === undefined,
  }).then(async (result): Promise<Sent> => {
    if (!result.accepted) return { ephemeral: false, ...result };
    await announceAccepted(deps, group, from.account);
    const { accepted: _, ...answer } = result;
    return { ephemeral: false, ...answer };
  });
}

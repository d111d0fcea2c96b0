/**
 * @module
 * Authentication of devices (PROTOCOL.md "Authentication"): single-use nonces, registration
 * under the open / invite / closed modes, login, and opaque bearer tokens stored only as hashes.
 * Signatures are checked before any lookup, so a failed proof reveals nothing about a device.
 */

import type { Deps } from "./deps.ts";
import { randomId, sha256 } from "./base/encoding.ts";
import { RelayError } from "./errors.ts";
import { redeemInvite } from "./accounts/invites.ts";
import { authText, certText, verify } from "./base/keys.ts";
import type { LoginBody, RegisterBody } from "./protocol.ts";

/** How long a nonce stays valid. */
export const NONCE_TTL_MS = 5 * 60_000;

/** An authenticated device, as handlers see it. */
export type Principal = { account: string; device: string };

/** A freshly issued token. */
export type IssuedToken = { token: string; expires_at: number };

/** Issues a single-use nonce, valid five minutes. */
export async function createChallenge(deps: Deps): Promise<{ nonce: string; expires_at: number }> {
  const nonce = randomId(32);
  const expires_at = deps.clock.now() + NONCE_TTL_MS;
  await deps.db.insertInto("auth_nonces").values({ nonce, expires_at }).execute();
  return { nonce, expires_at };
}

/** Consumes a nonce; throws `401 unauthenticated` if it was never issued, used or expired. */
async function consumeNonce(deps: Deps, nonce: string): Promise<void> {
  const row = await deps.db.deleteFrom("auth_nonces").where("nonce", "=", nonce)
    .returning("expires_at").executeTakeFirst();
  if (!row || row.expires_at <= deps.clock.now()) {
    throw new RelayError("unauthenticated", "The nonce is unknown, used or expired");
  }
}

async function issueToken(deps: Deps, device: string, db = deps.db): Promise<IssuedToken> {
  const token = randomId(32);
  const now = deps.clock.now();
  const expires_at = now + deps.config.tokenTtl;
  await db.insertInto("tokens")
    .values({ hash: await sha256(token), device_id: device, created_at: now, expires_at })
    .execute();
  return { token, expires_at };
}

/**
 * Registers a device (or re-registers a known one, idempotently).
 * Returns `created: false` for a device already registered under the same account.
 */
export async function register(
  deps: Deps,
  body: RegisterBody,
): Promise<IssuedToken & Principal & { created: boolean }> {
  await consumeNonce(deps, body.nonce);
  const [certOk, sigOk] = await Promise.all([
    verify(body.account, body.cert, certText(body.device)),
    verify(body.device, body.sig, authText(body.nonce)),
  ]);
  if (!certOk) throw new RelayError("unauthenticated", "The device certificate is not valid");
  if (!sigOk) throw new RelayError("unauthenticated", "The signature is not valid");
  try {
    return await admit(deps, body);
  } catch (error) {
    // Another request registered the same device or account a moment ago: decide again on the
    // committed state, which answers 200 (same account) or 409 (another account).
    if (isUniqueViolation(error)) return await admit(deps, body);
    throw error;
  }
}

/** The database half of registration, after every signature has been verified. */
async function admit(
  deps: Deps,
  body: RegisterBody,
): Promise<IssuedToken & Principal & { created: boolean }> {
  const known = await deps.db.selectFrom("devices").select(["account_id", "revoked_at"])
    .where("id", "=", body.device).executeTakeFirst();
  if (known) {
    if (known.account_id !== body.account) {
      throw new RelayError("conflict", "This device key is registered under another account");
    }
    if (known.revoked_at !== null) throw new RelayError("device_revoked");
    deps.activity.touch(body.device);
    const issued = await issueToken(deps, body.device);
    return { ...issued, account: body.account, device: body.device, created: false };
  }

  const { registration } = await deps.settings.get();
  const now = deps.clock.now();
  return await deps.db.transaction().execute(async (tx) => {
    const account = await tx.selectFrom("accounts").select("id")
      .where("id", "=", body.account).executeTakeFirst();
    if (registration === "closed") {
      throw new RelayError("registration_closed", "Registration is closed on this relay");
    }
    if (!account && registration === "invite") {
      if (!body.invite) {
        throw new RelayError("registration_closed", "Registration requires an invite code");
      }
      await redeemInvite(tx, body.invite, now);
    }
    if (!account) {
      await tx.insertInto("accounts").values({ id: body.account, created_at: now }).execute();
    }
    await tx.insertInto("devices").values({
      id: body.device,
      account_id: body.account,
      cert: body.cert,
      name: body.name ?? null,
      platform: body.platform ?? null,
      created_at: now,
      last_seen_at: deps.activity.coarse(now),
      revoked_at: null,
    }).execute();
    const issued = await issueToken(deps, body.device, tx);
    return { ...issued, account: body.account, device: body.device, created: true };
  });
}

/** Logs a known device in with a signed nonce. */
export async function login(deps: Deps, body: LoginBody): Promise<IssuedToken> {
  await consumeNonce(deps, body.nonce);
  if (!(await verify(body.device, body.sig, authText(body.nonce)))) {
    throw new RelayError("unauthenticated", "The signature is not valid");
  }
  const device = await deps.db.selectFrom("devices").select(["revoked_at"])
    .where("id", "=", body.device).executeTakeFirst();
  if (!device) throw new RelayError("unknown_device");
  if (device.revoked_at !== null) throw new RelayError("device_revoked");
  deps.activity.touch(body.device);
  return await issueToken(deps, body.device);
}

/**
 * Resolves a bearer token to its device, from `deps.tokens` when it was seen a moment ago
 * (`relay/accounts/token_cache.ts`: expiry exact, revocation at once). A token that is unknown or expired is
 * `401 unauthenticated`; one whose device was deleted by cleanup is `401 unknown_device`; one
 * whose device was revoked is `403 device_revoked`.
 */
export async function authenticateToken(deps: Deps, token: string): Promise<Principal> {
  return (await authenticateTokenUntil(deps, token)).principal;
}

/**
 * {@link authenticateToken}, and when the token expires (ms): a WebSocket authenticated with it
 * is closed `4001` then.
 */
export async function authenticateTokenUntil(
  deps: Deps,
  token: string,
): Promise<{ principal: Principal; expiresAt: number }> {
  const hash = await sha256(token);
  const cached = deps.tokens.get(hash);
  if (cached) {
    deps.activity.touch(cached.device);
    return {
      principal: { account: cached.account, device: cached.device },
      expiresAt: cached.expiresAt,
    };
  }
  const since = deps.tokens.begin();
  const row = await deps.db.selectFrom("tokens")
    .innerJoin("devices", "devices.id", "tokens.device_id")
    .select(["tokens.expires_at", "devices.id", "devices.account_id", "devices.revoked_at"])
    .where("tokens.hash", "=", hash).executeTakeFirst();
  if (!row) {
    const tomb = await deps.db.selectFrom("token_tombstones").select("expires_at")
      .where("hash", "=", hash).executeTakeFirst();
    if (tomb && tomb.expires_at > deps.clock.now()) throw new RelayError("unknown_device");
    throw new RelayError("unauthenticated", "The token is not valid");
  }
  if (row.expires_at <= deps.clock.now()) {
    throw new RelayError("unauthenticated", "The token has expired");
  }
  if (row.revoked_at !== null) throw new RelayError("device_revoked");
  deps.activity.touch(row.id);
  deps.tokens.set(
    hash,
    { account: row.account_id, device: row.id, expiresAt: row.expires_at },
    since,
  );
  return { principal: { account: row.account_id, device: row.id }, expiresAt: row.expires_at };
}

/**
 * Authenticates a WebSocket by a signature over the hello nonce. Unknown, revoked or bad
 * signatures all fail the same way for the socket (close 4001), but the error says which.
 */
export async function authenticateSignature(
  deps: Deps,
  device: string,
  sig: string,
  nonce: string,
): Promise<Principal> {
  if (!(await verify(device, sig, authText(nonce)))) {
    throw new RelayError("unauthenticated", "The signature is not valid");
  }
  const row = await deps.db.selectFrom("devices").select(["account_id", "revoked_at"])
    .where("id", "=", device).executeTakeFirst();
  if (!row) throw new RelayError("unknown_device");
  if (row.revoked_at !== null) throw new RelayError("device_revoked");
  deps.activity.touch(device);
  return { account: row.account_id, device };
}

/** Deletes expired nonces and tokens (run by the sweeper). */
export async function purgeExpiredCredentials(deps: Deps): Promise<number> {
  const now = deps.clock.now();
  const a = await deps.db.deleteFrom("auth_nonces").where("expires_at", "<=", now)
    .executeTakeFirst();
  const b = await deps.db.deleteFrom("tokens").where("expires_at", "<=", now).executeTakeFirst();
  const c = await deps.db.deleteFrom("token_tombstones").where("expires_at", "<=", now)
    .executeTakeFirst();
  return Number(a.numDeletedRows) + Number(b.numDeletedRows) + Number(c.numDeletedRows);
}

/** True for a Postgres unique-constraint violation (SQLSTATE 23505). */
export function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: string })?.code === "23505";
}

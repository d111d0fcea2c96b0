/**
 * @module
 * Who may use the admin dashboard. The password comes from `SEALPOST_ADMIN_PASSWORD` or is set
 * with `sealpost admin set-password`, which stores only a PBKDF2-SHA256 hash (WebCrypto, 600,000
 * iterations, as OWASP recommends for PBKDF2-SHA256; the count is kept in the hash string so it
 * can rise later). With neither, a one-time setup link lets the first visitor choose one.
 * Sessions and setup tokens are stored as SHA-256 hashes in the database, so every instance
 * accepts a session any instance issued, and a stolen database yields no usable cookie.
 */

import type { Clock } from "../relay/base/clock.ts";
import type { Db } from "../relay/store/database.ts";
import { fromBase64Url, randomId, sha256, toBase64Url, utf8 } from "../relay/base/encoding.ts";
import { invalid } from "../relay/errors.ts";

/** PBKDF2 iterations for new hashes. */
export const PBKDF2_ITERATIONS = 600_000;
/** Shortest password `set-password` and the setup page accept. */
export const MIN_PASSWORD_LENGTH = 10;
/** A session ends this long after login, however active. */
export const SESSION_TTL_MS = 12 * 3_600_000;
/** A session ends after this long without a request. */
export const SESSION_IDLE_MS = 2 * 3_600_000;
/** How long a setup link stays valid. */
export const SETUP_TTL_MS = 24 * 3_600_000;
/** `last_used_at` is written at most this often per session (not on every 5 s refresh). */
const TOUCH_EVERY_MS = 60_000;
const CREDENTIAL_ID = "admin";

async function pbkdf2(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", utf8(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: salt as Uint8Array<ArrayBuffer>, iterations },
    key,
    256,
  );
  return new Uint8Array(bits);
}

/** Equal-time comparison of two byte strings. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * Hashes a password as `pbkdf2-sha256$<iterations>$<salt>$<hash>` (base64url parts).
 *
 * @example
 * ```ts
 * const stored = await hashPassword("correct horse battery staple");
 * await verifyPassword("correct horse battery staple", stored); // true
 * ```
 */
export async function hashPassword(
  password: string,
  iterations = PBKDF2_ITERATIONS,
): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await pbkdf2(password, salt, iterations);
  return `pbkdf2-sha256$${iterations}$${toBase64Url(salt)}$${toBase64Url(hash)}`;
}

/** Checks a password against a stored hash string; false for a malformed one. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, iterations, salt, hash] = stored.split("$");
  const saltBytes = fromBase64Url(salt ?? "");
  const hashBytes = fromBase64Url(hash ?? "");
  const count = Number(iterations);
  if (scheme !== "pbkdf2-sha256" || !saltBytes || !hashBytes || !Number.isInteger(count)) {
    return false;
  }
  return sameBytes(await pbkdf2(password, saltBytes, count), hashBytes);
}

/** Refuses passwords too short to resist guessing. */
export function checkPasswordStrength(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw invalid(`The password must be at least ${MIN_PASSWORD_LENGTH} characters long`);
  }
}

/** Stores a new admin password hash (replacing any) and ends every session and setup link. */
export async function setAdminPassword(db: Db, clock: Clock, password: string): Promise<void> {
  checkPasswordStrength(password);
  const password_hash = await hashPassword(password);
  const now = clock.now();
  await db.transaction().execute(async (tx) => {
    await tx.insertInto("admin_credentials")
      .values({ id: CREDENTIAL_ID, password_hash, updated_at: now })
      .onConflict((oc) => oc.column("id").doUpdateSet({ password_hash, updated_at: now }))
      .execute();
    await tx.deleteFrom("admin_sessions").execute();
    await tx.deleteFrom("admin_setup_tokens").execute();
  });
}

/** True when a password hash is stored. */
export async function hasStoredPassword(db: Db): Promise<boolean> {
  return !!(await db.selectFrom("admin_credentials").select("id")
    .where("id", "=", CREDENTIAL_ID).executeTakeFirst());
}

/**
 * Checks a login password: against `SEALPOST_ADMIN_PASSWORD` when it is set (it then wins over a
 * stored hash), else against the stored hash. False when no password is configured at all.
 */
export async function checkAdminPassword(
  db: Db,
  envPassword: string | undefined,
  password: string,
): Promise<boolean> {
  if (envPassword !== undefined) {
    // Compare digests so the comparison takes the same time whatever the lengths.
    const [a, b] = await Promise.all([sha256(password), sha256(envPassword)]);
    return sameBytes(utf8(a), utf8(b));
  }
  const row = await db.selectFrom("admin_credentials").select("password_hash")
    .where("id", "=", CREDENTIAL_ID).executeTakeFirst();
  if (!row) return false;
  return await verifyPassword(password, row.password_hash);
}

/** A session as the dashboard sees it. */
export type AdminSession = {
  /** The hash of the cookie value: the session's id in the database and the audit log. */
  id: string;
  /** The CSRF token every mutating request of this session must carry. */
  csrf: string;
  created_at: number;
  expires_at: number;
};

/** The CSRF token of a session: derived from its secret cookie value, so it needs no storage. */
export function csrfTokenOf(sessionToken: string): Promise<string> {
  return sha256(`sealpost:admin-csrf:v1:${sessionToken}`);
}

/** Starts a session; returns the cookie value (shown once) and the session. */
export async function createAdminSession(
  db: Db,
  clock: Clock,
  ip: string | null,
): Promise<{ token: string; session: AdminSession }> {
  const token = randomId(32);
  const now = clock.now();
  const row = {
    token_hash: await sha256(token),
    created_at: now,
    expires_at: now + SESSION_TTL_MS,
    last_used_at: now,
    ip,
  };
  await db.insertInto("admin_sessions").values(row).execute();
  return {
    token,
    session: {
      id: row.token_hash,
      csrf: await csrfTokenOf(token),
      created_at: now,
      expires_at: row.expires_at,
    },
  };
}

/** The live session of a cookie value, or null when unknown, expired or idle too long. */
export async function findAdminSession(
  db: Db,
  clock: Clock,
  token: string,
): Promise<AdminSession | null> {
  const hash = await sha256(token);
  const row = await db.selectFrom("admin_sessions").selectAll().where("token_hash", "=", hash)
    .executeTakeFirst();
  const now = clock.now();
  if (!row) return null;
  if (row.expires_at <= now || now - row.last_used_at >= SESSION_IDLE_MS) {
    await db.deleteFrom("admin_sessions").where("token_hash", "=", hash).execute();
    return null;
  }
  if (now - row.last_used_at >= TOUCH_EVERY_MS) {
    await db.updateTable("admin_sessions").set({ last_used_at: now })
      .where("token_hash", "=", hash).execute();
  }
  return {
    id: hash,
    csrf: await csrfTokenOf(token),
    created_at: row.created_at,
    expires_at: row.expires_at,
  };
}

/** Ends a session (logout). */
export async function endAdminSession(db: Db, token: string): Promise<void> {
  await db.deleteFrom("admin_sessions").where("token_hash", "=", await sha256(token)).execute();
}

/** Deletes expired sessions and setup tokens (the sweeper may call it). */
export async function purgeExpiredAdminSessions(db: Db, clock: Clock): Promise<number> {
  const now = clock.now();
  const a = await db.deleteFrom("admin_sessions").where("expires_at", "<=", now)
    .executeTakeFirst();
  const b = await db.deleteFrom("admin_setup_tokens").where("expires_at", "<=", now)
    .executeTakeFirst();
  return Number(a.numDeletedRows) + Number(b.numDeletedRows);
}

/** Creates a one-time setup token (valid {@link SETUP_TTL_MS}); returns it (shown once). */
export async function createSetupToken(db: Db, clock: Clock): Promise<string> {
  const token = randomId(24);
  await db.insertInto("admin_setup_tokens")
    .values({ token_hash: await sha256(token), expires_at: clock.now() + SETUP_TTL_MS })
    .execute();
  return token;
}

/** True when `token` is a live setup token (not consumed, not expired). */
export async function isSetupTokenValid(db: Db, clock: Clock, token: string): Promise<boolean> {
  const row = await db.selectFrom("admin_setup_tokens").select("expires_at")
    .where("token_hash", "=", await sha256(token)).executeTakeFirst();
  return !!row && row.expires_at > clock.now();
}

/**
 * Uses a setup token to set the first password: race-free (the token row is deleted in the same
 * transaction, so only one visitor wins) and refused once a password exists. An unknown or
 * expired token, or a password already set, answers false before any hashing.
 */
export async function completeSetup(
  db: Db,
  clock: Clock,
  token: string,
  password: string,
): Promise<boolean> {
  // The token and the window are checked first (cheap), so a bogus token never costs a PBKDF2
  // run; the transaction below checks both again, race-free.
  if (!await isSetupTokenValid(db, clock, token) || await hasStoredPassword(db)) return false;
  checkPasswordStrength(password);
  const password_hash = await hashPassword(password);
  const now = clock.now();
  const hash = await sha256(token);
  return await db.transaction().execute(async (tx) => {
    const used = await tx.deleteFrom("admin_setup_tokens").where("token_hash", "=", hash)
      .where("expires_at", ">", now).executeTakeFirst();
    if (Number(used.numDeletedRows) !== 1) return false;
    const inserted = await tx.insertInto("admin_credentials")
      .values({ id: CREDENTIAL_ID, password_hash, updated_at: now })
      .onConflict((oc) => oc.column("id").doNothing()).executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) !== 1) return false;
    await tx.deleteFrom("admin_setup_tokens").execute();
    return true;
  });
}

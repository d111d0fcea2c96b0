/**
 * @module
 * RFC 8292 VAPID: the relay identifies itself to Web Push services with an ES256 JWT (audience:
 * the push service's origin; expiry: at most 24 hours; subject: a contact URI) and its P-256
 * public key, in `Authorization: vapid t=<jwt>, k=<key>`. The key pair is generated on first
 * start and kept in the database (`push_keys`), so every instance signs with the same key and
 * browsers' subscriptions, which are bound to it, survive restarts and new instances.
 */

import { SignJWT } from "jose";
import type { Clock } from "../base/clock.ts";
import type { Db } from "../store/database.ts";
import { toBase64Url } from "../base/encoding.ts";

/** The VAPID key pair: the private key for signing, the public key as clients need it. */
export type VapidKeys = {
  privateKey: CryptoKey;
  /** The uncompressed P-256 public key (65 bytes), base64url: `applicationServerKey`. */
  publicKey: string;
};

/** A token is reused until this long before it expires. */
const REUSE_MARGIN_MS = 3_600_000;
/** Tokens are valid this long (RFC 8292 allows at most 24 hours). */
const TOKEN_LIFE_MS = 12 * 3_600_000;

/**
 * Loads the VAPID key pair, generating and storing it on the first start. Concurrent first
 * starts agree: the first insert wins and everyone reads it back.
 *
 * @example
 * ```ts
 * const keys = await loadVapidKeys(db, clock);
 * keys.publicKey; // "BNc…" for GET /v1/info
 * ```
 */
export async function loadVapidKeys(db: Db, clock: Clock): Promise<VapidKeys> {
  const read = () =>
    db.selectFrom("push_keys").select(["public_key", "private_jwk"]).where("name", "=", "vapid")
      .executeTakeFirst();
  let row = await read();
  if (!row) {
    const pair = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      ["sign", "verify"],
    ) as CryptoKeyPair;
    const publicKey = toBase64Url(
      new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)),
    );
    const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
    await db.insertInto("push_keys").values({
      name: "vapid",
      public_key: publicKey,
      private_jwk: JSON.stringify(jwk),
      created_at: clock.now(),
    }).onConflict((oc) => oc.column("name").doNothing()).execute();
    row = await read();
    if (!row) throw new Error("Cannot store the VAPID key: the row vanished after insert");
  }
  const privateKey = await crypto.subtle.importKey(
    "jwk",
    JSON.parse(row.private_jwk),
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["sign"],
  );
  return { privateKey, publicKey: row.public_key };
}

/** Signs VAPID tokens, one per push service origin, reused until close to expiry. */
export class VapidSigner {
  #cache = new Map<string, { header: string; expiresAt: number }>();

  constructor(
    private readonly keys: VapidKeys,
    /** `mailto:` or `https:` contact for the push service operators. */
    private readonly subject: string,
    private readonly clock: Clock,
  ) {}

  get publicKey(): string {
    return this.keys.publicKey;
  }

  /** The `Authorization` header value for a request to `endpoint`. */
  async authorization(endpoint: string): Promise<string> {
    const audience = new URL(endpoint).origin;
    const now = this.clock.now();
    const cached = this.#cache.get(audience);
    if (cached && cached.expiresAt - REUSE_MARGIN_MS > now) return cached.header;
    const expiresAt = now + TOKEN_LIFE_MS;
    const jwt = await new SignJWT({ sub: this.subject })
      .setProtectedHeader({ typ: "JWT", alg: "ES256" })
      .setAudience(audience)
      .setExpirationTime(Math.floor(expiresAt / 1000))
      .sign(this.keys.privateKey);
    const header = `vapid t=${jwt}, k=${this.keys.publicKey}`;
    if (this.#cache.size > 1000) this.#cache.clear();
    this.#cache.set(audience, { header, expiresAt });
    return header;
  }
}

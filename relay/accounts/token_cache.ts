/**
 * @module
 * A bounded in-memory cache of valid bearer tokens, so a request with a token seen a moment ago
 * costs no round trip to the database (issue 14: an HTTP send far from the primary). Only tokens
 * that authenticated are cached, by their SHA-256, with the token's own expiry: a hit past
 * `expires_at` is a miss, so expiry stays exact. An entry lives at most `SEALPOST_TOKEN_CACHE`
 * (the safety net for changes made behind the relay's back, e.g. by hand in SQL); a `revoked`
 * bus event (revocation, or deletion by cleanup, on any instance) drops the device's entries at
 * once, and a bus gap (events may have been missed) empties the cache. While the bus is deaf (its
 * listening connection down, so another instance's revocation could go unheard) the cache is
 * neither read nor filled: every request goes to the database until the bus hears again. Tokens are never deleted
 * one by one (there is no logout): they expire, or go with their device.
 */

import type { Bus } from "../bus/bus.ts";
import type { Clock } from "../base/clock.ts";

/** What a cached token resolves to. */
export type CachedToken = { account: string; device: string; expiresAt: number };

/** Entries kept at most; past it the oldest entry goes (a Map keeps insertion order). */
export const TOKEN_CACHE_ENTRIES = 10_000;

/** See the module doc. */
export class TokenCache {
  readonly #entries = new Map<string, CachedToken & { until: number }>();
  readonly #clock: Clock;
  readonly #ttl: number;
  readonly #max: number;
  readonly #bus: Bus;
  /** Bumped by every drop: a lookup that began before one must not fill the cache. */
  #generation = 0;

  /** `ttl` 0 disables the cache. */
  constructor(options: { bus: Bus; clock: Clock; ttl: number; max?: number }) {
    this.#bus = options.bus;
    this.#clock = options.clock;
    this.#ttl = options.ttl;
    this.#max = options.max ?? TOKEN_CACHE_ENTRIES;
    if (this.#ttl <= 0) return;
    options.bus.subscribe((event) => {
      if (event.kind === "revoked") this.dropDevice(event.device);
    });
    options.bus.onGap(() => this.clear());
  }

  /** The cached, unexpired entry for a token hash, if any. */
  get(hash: string): CachedToken | undefined {
    if (this.#bus.hearing === false) return undefined;
    const entry = this.#entries.get(hash);
    if (!entry) return undefined;
    const now = this.#clock.now();
    if (entry.until <= now || entry.expiresAt <= now) {
      this.#entries.delete(hash);
      return undefined;
    }
    return { account: entry.account, device: entry.device, expiresAt: entry.expiresAt };
  }

  /** Call before reading a token from the database; pass the result to {@link set}. */
  begin(): number {
    return this.#generation;
  }

  /**
   * Remembers a token that just authenticated against the database, unless a drop happened
   * since its lookup began (the row read may predate a revocation).
   */
  set(hash: string, token: CachedToken, since: number): void {
    if (this.#ttl <= 0 || since !== this.#generation || this.#bus.hearing === false) return;
    this.#entries.delete(hash);
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(hash, { ...token, until: this.#clock.now() + this.#ttl });
  }

  /** Drops every token of a device (revoked or deleted). */
  dropDevice(device: string): void {
    this.#generation++;
    for (const [hash, entry] of this.#entries) {
      if (entry.device === device) this.#entries.delete(hash);
    }
  }

  /** Drops everything. */
  clear(): void {
    this.#generation++;
    this.#entries.clear();
  }

  /** Entries held (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }
}

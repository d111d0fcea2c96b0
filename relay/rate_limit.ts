/**
 * @module
 * Token-bucket rate limits keyed by device or IP, on the injectable clock. A limiter answers
 * how long to wait when a key is over its rate, so callers can report `retry_after_ms`. Its map
 * of keys is bounded: each call examines a few keys and forgets those whose bucket has refilled
 * (amortised, never a scan of the whole map on one request), and past {@link MAX_KEYS} the
 * least recently used key is forgotten.
 */

import type { Clock } from "./base/clock.ts";
import type { Rate } from "./config/config.ts";
import { RelayError } from "./errors.ts";

type Bucket = { tokens: number; at: number };

/** A limiter forgets its least recently used keys beyond this many. */
export const MAX_KEYS = 100_000;
/** Keys examined for pruning on each call: enough to keep pace with one new key per call. */
const PRUNE_STEP = 4;

/**
 * A keyed token bucket: `rate.count` tokens per `rate.perMs`, holding at most `burst` tokens.
 * A `null` rate never limits.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter({ count: 100, perMs: 60_000 }, 20, systemClock);
 * limiter.check("device-id"); // throws RelayError("rate_limited") when over
 * ```
 */
export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  #burst: number;
  #sweep: Iterator<[string, Bucket]> | null = null;

  constructor(
    private rate: Rate,
    private readonly burst: number | undefined,
    private readonly clock: Clock,
    /** Called each time {@link check} refuses (metrics). */
    private readonly onLimited?: () => void,
    private readonly maxKeys = MAX_KEYS,
  ) {
    this.#burst = Math.max(1, burst ?? rate?.count ?? 1);
  }

  /** Changes the rate (an admin changed a run-time setting); buckets keep their tokens. */
  setRate(rate: Rate): void {
    this.rate = rate;
    this.#burst = Math.max(1, this.burst ?? rate?.count ?? 1);
  }

  /** How many keys the limiter remembers (for tests and metrics). */
  get size(): number {
    return this.#buckets.size;
  }

  #refilled(bucket: Bucket | undefined, now: number): Bucket {
    if (!bucket || !this.rate) return { tokens: this.#burst, at: now };
    const perToken = this.rate.perMs / this.rate.count;
    const refill = Math.max(0, now - bucket.at) / perToken;
    return { tokens: Math.min(this.#burst, bucket.tokens + refill), at: now };
  }

  /** Milliseconds until `key` has a token, without taking one (0 when it has one now). */
  peek(key: string): number {
    if (!this.rate) return 0;
    const bucket = this.#refilled(this.#buckets.get(key), this.clock.now());
    return bucket.tokens >= 1
      ? 0
      : Math.ceil((1 - bucket.tokens) * this.rate.perMs / this.rate.count);
  }

  /** Takes one token for `key`; returns 0 when allowed, else milliseconds until one is free. */
  take(key: string): number {
    if (!this.rate) return 0;
    const now = this.clock.now();
    const bucket = this.#refilled(this.#buckets.get(key), now);
    // Delete and set again: the map's order is then least recently used first.
    this.#buckets.delete(key);
    this.#prune(now);
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    this.#buckets.set(key, bucket);
    return allowed ? 0 : Math.ceil((1 - bucket.tokens) * this.rate.perMs / this.rate.count);
  }

  /** Gives back a token {@link take} took (the attempt turned out not to count). */
  refund(key: string): void {
    const bucket = this.#buckets.get(key);
    if (bucket) bucket.tokens = Math.min(this.#burst, bucket.tokens + 1);
  }

  /** Takes a token or throws `429 rate_limited` with the wait in `retry_after_ms`. */
  check(key: string, what = "requests"): void {
    const wait = this.take(key);
    if (wait > 0) {
      this.onLimited?.();
      throw new RelayError("rate_limited", `Too many ${what}: try again later`, wait);
    }
  }

  /**
   * One bounded step of forgetting: examines the next {@link PRUNE_STEP} keys (resuming where
   * the last step stopped) and drops those whose bucket is full again, then evicts the least
   * recently used keys while over the cap.
   */
  #prune(now: number): void {
    for (let i = 0; i < PRUNE_STEP && this.#buckets.size > 0; i++) {
      this.#sweep ??= this.#buckets.entries();
      const next = this.#sweep.next();
      if (next.done) {
        this.#sweep = null;
        continue;
      }
      const [key, bucket] = next.value;
      if (this.#refilled(bucket, now).tokens >= this.#burst) this.#buckets.delete(key);
    }
    while (this.#buckets.size >= this.maxKeys) {
      const oldest = this.#buckets.keys().next();
      if (oldest.done) break;
      this.#buckets.delete(oldest.value);
    }
  }
}

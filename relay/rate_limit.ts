/**
 * @module
 * Token-bucket rate limits keyed by device or IP, on the injectable clock. A limiter answers
 * how long to wait when a key is over its rate, so callers can report `retry_after_ms`.
 */

import type { Clock } from "./base/clock.ts";
import type { Rate } from "./config/config.ts";
import { RelayError } from "./errors.ts";

type Bucket = { tokens: number; at: number };

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

  constructor(
    private rate: Rate,
    private readonly burst: number | undefined,
    private readonly clock: Clock,
    /** Called each time {@link check} refuses (metrics). */
    private readonly onLimited?: () => void,
  ) {
    this.#burst = Math.max(1, burst ?? rate?.count ?? 1);
  }

  /** Changes the rate (an admin changed a run-time setting); buckets keep their tokens. */
  setRate(rate: Rate): void {
    this.rate = rate;
    this.#burst = Math.max(1, this.burst ?? rate?.count ?? 1);
  }

  /** Takes one token for `key`; returns 0 when allowed, else milliseconds until one is free. */
  take(key: string): number {
    if (!this.rate) return 0;
    const now = this.clock.now();
    const perToken = this.rate.perMs / this.rate.count;
    const bucket = this.#buckets.get(key) ?? { tokens: this.#burst, at: now };
    const refill = Math.max(0, now - bucket.at) / perToken;
    bucket.tokens = Math.min(this.#burst, bucket.tokens + refill);
    bucket.at = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      this.#buckets.set(key, bucket);
      this.#prune(now);
      return 0;
    }
    this.#buckets.set(key, bucket);
    return Math.ceil((1 - bucket.tokens) * perToken);
  }

  /** Takes a token or throws `429 rate_limited` with the wait in `retry_after_ms`. */
  check(key: string, what = "requests"): void {
    const wait = this.take(key);
    if (wait > 0) {
      this.onLimited?.();
      throw new RelayError("rate_limited", `Too many ${what}: try again later`, wait);
    }
  }

  /** Forgets full buckets now and then so idle keys do not accumulate. */
  #prune(now: number): void {
    if (this.#buckets.size < 50_000 || !this.rate) return;
    const perToken = this.rate.perMs / this.rate.count;
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.at) / perToken >= this.#burst) this.#buckets.delete(key);
    }
  }
}

/**
 * @module
 * The clock port. Every timing decision (token and nonce expiry, TTL, inactivity, rate limits)
 * reads one injectable {@link Clock}, so tests move time without sleeping.
 */

/** A source of the current time in milliseconds since the Unix epoch. */
export interface Clock {
  /** The current time; never goes backwards for a given clock. */
  now(): number;
}

/** The real wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/**
 * A clock tests can move by hand.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(1_700_000_000_000);
 * clock.advance(60_000);
 * ```
 */
export class ManualClock implements Clock {
  constructor(private time: number = Date.now()) {}
  now(): number {
    return this.time;
  }
  /** Moves time forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.time += ms;
  }
  /** Sets the time; refuses to go backwards. */
  set(time: number): void {
    if (time < this.time) throw new Error("ManualClock cannot go backwards");
    this.time = time;
  }
}

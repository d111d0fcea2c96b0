/**
 * @module
 * The last hour of this instance's traffic, per minute, for the admin chart: messages accepted,
 * deliveries and server errors, taken as differences of the Prometheus counters. A ring of 60
 * minute buckets in memory; nothing is stored, so a restart starts the chart afresh.
 */

import type { Clock } from "../relay/base/clock.ts";
import type { Metrics } from "../relay/base/metrics.ts";

/** Counts of one minute. */
export type MinuteCounts = {
  /** Start of the minute (ms since the epoch). */
  minute: number;
  messages: number;
  deliveries: number;
  errors: number;
};

type Totals = { messages: number; deliveries: number; errors: number };

const MINUTE = 60_000;
const KEEP = 60;

async function counterTotal(
  counter: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> },
  filter: (labels: Record<string, unknown>) => boolean = () => true,
): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => filter(v.labels)).reduce((sum, v) => sum + v.value, 0);
}

/** A per-minute ring of counter differences. */
export class MetricsHistory {
  #buckets = new Map<number, MinuteCounts>();
  #last: Totals | null = null;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly metrics: Metrics, private readonly clock: Clock) {}

  async #totals(): Promise<Totals> {
    const [messages, deliveries, errors] = await Promise.all([
      counterTotal(this.metrics.messagesAccepted),
      counterTotal(this.metrics.deliveries),
      counterTotal(this.metrics.httpRequests, (labels) => labels.status === "5xx"),
    ]);
    return { messages, deliveries, errors };
  }

  /** Adds what the counters gained since the last sample to the current minute. */
  async sample(): Promise<void> {
    const totals = await this.#totals();
    const last = this.#last ?? { messages: 0, deliveries: 0, errors: 0 };
    this.#last = totals;
    const minute = Math.floor(this.clock.now() / MINUTE) * MINUTE;
    const bucket = this.#buckets.get(minute) ??
      { minute, messages: 0, deliveries: 0, errors: 0 };
    bucket.messages += Math.max(0, totals.messages - last.messages);
    bucket.deliveries += Math.max(0, totals.deliveries - last.deliveries);
    bucket.errors += Math.max(0, totals.errors - last.errors);
    this.#buckets.set(minute, bucket);
    for (const key of this.#buckets.keys()) {
      if (key <= minute - KEEP * MINUTE) this.#buckets.delete(key);
    }
  }

  /** Samples every 10 s (real time) so the chart fills in without anyone watching. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.sample().catch(() => {}), 10_000);
  }

  /** Stops sampling. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The last 60 minutes, oldest first, the current (partial) minute last; sampled now. */
  async lastHour(): Promise<MinuteCounts[]> {
    await this.sample();
    const current = Math.floor(this.clock.now() / MINUTE) * MINUTE;
    const out: MinuteCounts[] = [];
    for (let i = KEEP - 1; i >= 0; i--) {
      const minute = current - i * MINUTE;
      out.push(this.#buckets.get(minute) ?? { minute, messages: 0, deliveries: 0, errors: 0 });
    }
    return out;
  }
}

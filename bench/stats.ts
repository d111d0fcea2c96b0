/**
 * @module
 * Latency samples and their summary. Every sample is kept (a few million doubles at most), so
 * percentiles are exact rather than estimated from buckets.
 */

/** Summary of a set of latencies in milliseconds. */
export type LatencySummary = {
  count: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
};

/** A growable list of latency samples in milliseconds. */
export class Latencies {
  #values = new Float64Array(1 << 16);
  #length = 0;

  /** Adds one sample. */
  add(ms: number): void {
    if (this.#length === this.#values.length) {
      const bigger = new Float64Array(this.#values.length * 2);
      bigger.set(this.#values);
      this.#values = bigger;
    }
    this.#values[this.#length++] = ms;
  }

  get count(): number {
    return this.#length;
  }

  /** Exact percentiles (nearest rank) of the samples so far. */
  summary(): LatencySummary {
    const n = this.#length;
    if (n === 0) return { count: 0, p50_ms: 0, p95_ms: 0, p99_ms: 0, max_ms: 0, mean_ms: 0 };
    const sorted = this.#values.slice(0, n).sort();
    const at = (p: number) => round(sorted[Math.min(n - 1, Math.ceil(p * n) - 1)]);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += sorted[i];
    return {
      count: n,
      p50_ms: at(0.5),
      p95_ms: at(0.95),
      p99_ms: at(0.99),
      max_ms: round(sorted[n - 1]),
      mean_ms: round(sum / n),
    };
  }
}

/** Rounds to two decimals (or to whole numbers above 100). */
export function round(value: number): number {
  return Math.abs(value) >= 100 ? Math.round(value) : Math.round(value * 100) / 100;
}

/**
 * Runs `task` over `items` with at most `concurrency` in flight; results keep input order.
 *
 * @example
 * ```ts
 * const devices = await pool(range(600), 32, () => registerDevice(url));
 * ```
 */
export async function pool<T, R>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await task(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

/** `[0, 1, …, n-1]`. */
export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

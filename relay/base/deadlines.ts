/**
 * @module
 * A set of items that each fall due at a time, bucketed by whole second: adding and removing an
 * item is O(1) (plus O(log n) for a new second), and finding what is due looks only at the due
 * buckets — never at every item. The hub keeps its token-authenticated connections here, so
 * 10,000 idle sockets cost nothing per tick; the caller polls {@link Deadlines.due} with the
 * injectable clock's time, so tests move time without sleeping.
 */

const BUCKET_MS = 1000;

/**
 * Items with deadlines.
 *
 * @example
 * ```ts
 * const deadlines = new Deadlines<string>();
 * deadlines.add("a", 1_000);
 * deadlines.due(1_500); // ["a"]
 * ```
 */
export class Deadlines<T> {
  readonly #buckets = new Map<number, Set<T>>();
  readonly #bucketOf = new Map<T, number>();
  /** Bucket keys as a binary min-heap; a key whose bucket emptied is skipped when it surfaces. */
  readonly #heap: number[] = [];

  /** How many items wait. */
  get size(): number {
    return this.#bucketOf.size;
  }

  /** Adds `item`, due at `at` (ms); an item already present moves to its new deadline. */
  add(item: T, at: number): void {
    this.delete(item);
    // An item is due from the end of its second: never before `at`.
    const key = Math.ceil(at / BUCKET_MS);
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      this.#buckets.set(key, bucket = new Set());
      this.#push(key);
    }
    bucket.add(item);
    this.#bucketOf.set(item, key);
  }

  /** Forgets `item` (it closed before its deadline). */
  delete(item: T): void {
    const key = this.#bucketOf.get(item);
    if (key === undefined) return;
    this.#bucketOf.delete(item);
    const bucket = this.#buckets.get(key)!;
    bucket.delete(item);
    if (bucket.size === 0) this.#buckets.delete(key);
  }

  /** Removes and returns every item due at `now`. */
  due(now: number): T[] {
    const out: T[] = [];
    const last = Math.floor(now / BUCKET_MS);
    while (this.#heap.length > 0 && this.#heap[0] <= last) {
      const key = this.#pop();
      const bucket = this.#buckets.get(key);
      if (!bucket) continue;
      this.#buckets.delete(key);
      for (const item of bucket) {
        this.#bucketOf.delete(item);
        out.push(item);
      }
    }
    return out;
  }

  #push(key: number): void {
    const heap = this.#heap;
    heap.push(key);
    for (let i = heap.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (heap[parent] <= heap[i]) break;
      [heap[parent], heap[i]] = [heap[i], heap[parent]];
      i = parent;
    }
  }

  #pop(): number {
    const heap = this.#heap;
    const top = heap[0];
    const end = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = end;
      for (let i = 0;;) {
        const l = 2 * i + 1, r = l + 1;
        let min = i;
        if (l < heap.length && heap[l] < heap[min]) min = l;
        if (r < heap.length && heap[r] < heap[min]) min = r;
        if (min === i) break;
        [heap[min], heap[i]] = [heap[i], heap[min]];
        i = min;
      }
    }
    return top;
  }
}

/**
 * @module
 * The in-process bus for a single instance: events go straight to local subscribers, in order.
 */

import type { Bus, BusEvent } from "./bus.ts";

/** A bus within one process. */
export class LocalBus implements Bus {
  #handlers = new Set<(event: BusEvent) => void>();

  publish(event: BusEvent): void {
    for (const handler of this.#handlers) handler(event);
  }

  /** An in-process bus never misses events. */
  onGap(): void {}

  subscribe(handler: (event: BusEvent) => void): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  close(): Promise<void> {
    this.#handlers.clear();
    return Promise.resolve();
  }
}

/**
 * @module
 * A tiny typed event emitter for the session's `on`/`off` events. Listeners run in the order
 * they were added; one that throws does not stop the others, and its error goes to `onThrow`
 * (the session turns it into an `error` event).
 */

// deno-lint-ignore no-explicit-any
type Listener = (...args: any[]) => unknown;

/** Events by name, each a listener signature. */
export type EventMap = { [name: string]: Listener };

/** Listeners by event name. */
export class Emitter<Events extends EventMap> {
  #listeners = new Map<keyof Events, Events[keyof Events][]>();
  #onThrow: (error: unknown, event: keyof Events) => void;

  constructor(onThrow: (error: unknown, event: keyof Events) => void) {
    this.#onThrow = onThrow;
  }

  /** Adds `listener` for `event`. */
  on<K extends keyof Events>(event: K, listener: Events[K]): void {
    const list = this.#listeners.get(event) ?? [];
    list.push(listener);
    this.#listeners.set(event, list);
  }

  /** Removes `listener` from `event` (a no-op when it was not added). */
  off<K extends keyof Events>(event: K, listener: Events[K]): void {
    const list = this.#listeners.get(event);
    const at = list?.indexOf(listener) ?? -1;
    if (list && at >= 0) list.splice(at, 1);
  }

  /** The listeners of `event`, in order (a copy). */
  listeners<K extends keyof Events>(event: K): Events[K][] {
    return [...(this.#listeners.get(event) ?? [])] as Events[K][];
  }

  /** Calls every listener of `event`; a throw or rejection goes to `onThrow`. */
  emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    for (const listener of this.listeners(event)) {
      try {
        const result = listener(...args);
        if (result instanceof Promise) result.catch((error) => this.#onThrow(error, event));
      } catch (error) {
        this.#onThrow(error, event);
      }
    }
  }
}

/**
 * @module
 * Long-polling for `GET /v1/inbox?wait=`: a waiter registers the groups it cares about and is
 * woken by the next committed message in any of them (or a membership change of its account),
 * then reads again. Registration happens before the re-read, so nothing committed in between
 * is missed; when the bus may have missed events (its `onGap`: a reconnect, or another instance
 * that committed unannounced), every waiter is woken to read again.
 */

import type { Bus } from "./bus/bus.ts";

type Waiter = { account: string; groups: Set<string>; wake: () => void };

/** Wakes long-polls when something arrives for them. */
export class InboxWaiters {
  #waiters = new Set<Waiter>();
  readonly #stop: () => void;

  constructor(bus: Bus) {
    this.#stop = bus.subscribe((event) => {
      if (this.#waiters.size === 0) return;
      for (const waiter of [...this.#waiters]) {
        const hit = event.kind === "messages"
          ? waiter.groups.has(event.group)
          : event.kind === "membership" && event.account === waiter.account;
        if (hit) waiter.wake();
      }
    });
    bus.onGap(() => this.wakeAll());
  }

  /**
   * Registers a waiter and returns a promise that resolves when woken or after `timeoutMs`,
   * plus a cancel function. Call `read` after registering: anything committed from then on
   * wakes the waiter.
   */
  wait(
    account: string,
    groups: string[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): { woken: Promise<void>; cancel: () => void } {
    let resolve!: () => void;
    const woken = new Promise<void>((r) => resolve = r);
    const waiter: Waiter = { account, groups: new Set(groups), wake: () => finish() };
    const timer = setTimeout(() => finish(), timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      this.#waiters.delete(waiter);
      signal?.removeEventListener("abort", finish);
      resolve();
    };
    signal?.addEventListener("abort", finish);
    this.#waiters.add(waiter);
    return { woken, cancel: finish };
  }

  /** Wakes every waiter (drain). */
  wakeAll(): void {
    for (const waiter of [...this.#waiters]) waiter.wake();
  }

  close(): void {
    this.wakeAll();
    this.#stop();
  }
}

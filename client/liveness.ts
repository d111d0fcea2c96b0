/**
 * @module
 * Notices a dead connection the network did not report (a sleeping laptop, a NAT that dropped the
 * mapping, a proxy that stopped forwarding): when nothing arrived for `intervalMs`, the session
 * pings; with no frame back within `timeoutMs` the connection counts as dead and the session
 * reconnects. Any frame from the relay counts as a sign of life. `check()` pings at once (the
 * browser came back online or the page became visible).
 */

/** Options: `intervalMs` 0 turns the periodic check off (`check()` still works). */
export type LivenessOptions = {
  intervalMs: number;
  timeoutMs: number;
  ping(): void;
  dead(): void;
};

/** One connection's liveness watch. */
export class Liveness {
  #options: LivenessOptions;
  #lastFrameAt = 0;
  #interval: ReturnType<typeof setInterval> | undefined;
  #deadline: ReturnType<typeof setTimeout> | undefined;

  constructor(options: LivenessOptions) {
    this.#options = options;
  }

  /** Starts watching a fresh connection. */
  start(): void {
    this.stop();
    this.#lastFrameAt = Date.now();
    const { intervalMs } = this.#options;
    if (intervalMs > 0) {
      this.#interval = setInterval(() => {
        if (Date.now() - this.#lastFrameAt >= intervalMs) this.check();
      }, intervalMs);
    }
  }

  /** A frame arrived. */
  alive(): void {
    this.#lastFrameAt = Date.now();
    clearTimeout(this.#deadline);
    this.#deadline = undefined;
  }

  /** Pings now; the connection is dead if nothing arrives within `timeoutMs`. */
  check(): void {
    if (this.#deadline !== undefined) return;
    this.#deadline = setTimeout(() => {
      this.#deadline = undefined;
      this.stop();
      this.#options.dead();
    }, this.#options.timeoutMs);
    this.#options.ping();
  }

  /** Stops watching (the connection closed). */
  stop(): void {
    clearInterval(this.#interval);
    clearTimeout(this.#deadline);
    this.#interval = undefined;
    this.#deadline = undefined;
  }
}

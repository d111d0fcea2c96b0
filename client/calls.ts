/**
 * @module
 * The session's calls in flight: each has a `ref`, the frames that ask it (sent again after a
 * reconnect), a deadline and an optional `AbortSignal`, so no call can wait forever. A call
 * settles once: by its answer, by an error frame, by its timeout, by its signal, or when the
 * session fails or closes.
 */

/** Why a session call failed: a relay error code, or one of the session's own codes. */
export class SessionError extends Error {
  override name = "SessionError";
  /**
   * The relay's error code (`not_found`, `rate_limited`, …) or the session's own: `timeout`,
   * `disconnected` (a call while disconnected with `whileDisconnected: "reject"`), `failed`
   * (the session ended: revoked, or its token could not be renewed) or `closed`.
   */
  readonly code: string;
  /** The relay's retry hint, when it gave one. */
  readonly retryAfterMs?: number;

  constructor(code: string, message: string, retryAfterMs?: number) {
    super(`${code}: ${message}`);
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/** A send the relay refused (kept as its own class: apps test `instanceof SendError`). */
export class SendError extends SessionError {
  override name = "SendError";
}

/** Per-call options: a timeout in ms (0 for none) and an `AbortSignal`. */
export type CallOptions = { timeoutMs?: number; signal?: AbortSignal };

/** What a call is, for the session's retry rules. */
export type CallKind = "send" | "presence" | "ping" | "ack" | "accept";

type Entry = {
  kind: CallKind;
  frames: Record<string, unknown>[];
  resolve(value: unknown): void;
  reject(error: unknown): void;
  timers: Set<ReturnType<typeof setTimeout>>;
  dispose(): void;
};

/** The table of calls in flight, by `ref`. */
export class PendingCalls {
  #entries = new Map<string, Entry>();

  /** Number of calls in flight. */
  get size(): number {
    return this.#entries.size;
  }

  /** Registers a call; its promise settles once (answer, error, timeout, abort or `rejectAll`). */
  add<T>(
    ref: string,
    kind: CallKind,
    frames: Record<string, unknown>[],
    options: CallOptions,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const { signal, timeoutMs = 0 } = options;
      if (signal?.aborted) return reject(signal.reason);
      const timers = new Set<ReturnType<typeof setTimeout>>();
      const onAbort = () => this.reject(ref, signal!.reason);
      const entry: Entry = {
        kind,
        frames,
        resolve: resolve as (value: unknown) => void,
        reject,
        timers,
        dispose: () => {
          for (const timer of timers) clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        },
      };
      this.#entries.set(ref, entry);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs > 0) {
        timers.add(setTimeout(() => {
          this.reject(ref, new SessionError("timeout", `No answer to ${kind} in ${timeoutMs} ms`));
        }, timeoutMs));
      }
    });
  }

  /** The call's kind and frames, if it is still in flight. */
  get(ref: string): { kind: CallKind; frames: Record<string, unknown>[] } | undefined {
    return this.#entries.get(ref);
  }

  /** Every call in flight, oldest first. */
  all(): { ref: string; kind: CallKind; frames: Record<string, unknown>[] }[] {
    return [...this.#entries].map(([ref, e]) => ({ ref, kind: e.kind, frames: e.frames }));
  }

  /** Runs `fn` after `ms` unless the call settles first. */
  later(ref: string, ms: number, fn: () => void): void {
    const entry = this.#entries.get(ref);
    if (!entry) return;
    const timer = setTimeout(() => {
      entry.timers.delete(timer);
      if (this.#entries.get(ref) === entry) fn();
    }, ms);
    entry.timers.add(timer);
  }

  /** Settles a call with its answer; false when it was not in flight. */
  resolve(ref: string, value: unknown): boolean {
    const entry = this.#take(ref);
    entry?.resolve(value);
    return entry !== undefined;
  }

  /** Fails a call; false when it was not in flight. */
  reject(ref: string, error: unknown): boolean {
    const entry = this.#take(ref);
    entry?.reject(error);
    return entry !== undefined;
  }

  /** Fails every call in flight (the session failed or closed). */
  rejectAll(error: unknown): void {
    for (const ref of [...this.#entries.keys()]) this.reject(ref, error);
  }

  #take(ref: string): Entry | undefined {
    const entry = this.#entries.get(ref);
    if (!entry) return undefined;
    this.#entries.delete(ref);
    entry.dispose();
    return entry;
  }
}

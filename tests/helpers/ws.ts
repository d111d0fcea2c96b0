/**
 * @module
 * A raw WebSocket for protocol-level tests: frames are queued as they arrive and read with
 * `next(predicate)`, with a timeout, so a test states exactly which frames it expects.
 */

/** A JSON frame. */
export type Frame = Record<string, unknown> & { t: string };

/** A test-side WebSocket with a frame queue. */
export class RawSocket {
  readonly frames: Frame[] = [];
  #waiters: (() => void)[] = [];
  readonly #closed: Promise<{ code: number; reason: string }>;
  socket: WebSocket;

  private constructor(url: string) {
    this.socket = new WebSocket(url);
    this.#closed = new Promise((resolve) => {
      this.socket.onclose = (e) => {
        resolve({ code: e.code, reason: e.reason });
        this.#wake();
      };
    });
    this.socket.onmessage = (e) => {
      this.frames.push(JSON.parse(String(e.data)));
      this.#wake();
    };
    this.socket.onerror = () => {};
  }

  /**
   * Resolves with the close code and reason; after 20 s without a close it resolves with code -1,
   * so a test that expects a close fails instead of hanging.
   */
  get closed(): Promise<{ code: number; reason: string }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<{ code: number; reason: string }>((resolve) => {
      timer = setTimeout(() => resolve({ code: -1, reason: "no close within 20 s" }), 20_000);
    });
    return Promise.race([this.#closed, timeout]).finally(() => clearTimeout(timer));
  }

  #wake() {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Opens a socket and waits for `hello`. */
  static async open(url: string): Promise<RawSocket & { hello: Frame }> {
    const raw = new RawSocket(url);
    const hello = await raw.next((f) => f.t === "hello");
    return Object.assign(raw, { hello });
  }

  /** Opens and authenticates with a token, waiting for `ready`. */
  static async authed(url: string, token: string): Promise<RawSocket & { hello: Frame }> {
    const raw = await RawSocket.open(url);
    raw.send({ t: "auth", token });
    await raw.next((f) => f.t === "ready");
    return raw;
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** Removes and returns the first frame matching `predicate`, waiting up to `timeoutMs`. */
  async next(predicate: (f: Frame) => boolean = () => true, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const i = this.frames.findIndex(predicate);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `no matching frame within ${timeoutMs} ms; have ${
            JSON.stringify(this.frames).slice(0, 500)
          }`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** Collects `n` frames matching `predicate`. */
  async take(n: number, predicate: (f: Frame) => boolean, timeoutMs = 10_000): Promise<Frame[]> {
    const out: Frame[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n) out.push(await this.next(predicate, Math.max(1, deadline - Date.now())));
    return out;
  }

  /** True when no frame matching `predicate` arrives within `ms`. */
  async none(predicate: (f: Frame) => boolean, ms = 300): Promise<boolean> {
    try {
      await this.next(predicate, ms);
      return false;
    } catch {
      return true;
    }
  }

  close(): void {
    try {
      this.socket.close();
    } catch { /* ignore */ }
  }
}

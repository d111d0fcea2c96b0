/**
 * @module
 * One authenticated WebSocket connection: the device and account behind it, the groups it
 * follows, and the two ways a frame goes out — live (`sendText`: dropped and the connection
 * closed as too slow once the socket's buffered output passes the limit) and paced
 * (`sendPaced`, for replays: waits up to 30 s for the client to read its buffer down).
 */

import type { ServerFrame } from "./protocol.ts";
import type { Subscription } from "./subscribe.ts";

/** The socket operations a connection needs (a WebSocket, or a test double in unit tests). */
export interface FrameSocket {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  readonly bufferedAmount: number;
  readonly readyState: number;
}

/** How long a replay waits for a client that reads nothing before closing it 4009. */
const REPLAY_STALL_MS = 30_000;

/** One authenticated connection: the device behind it, its groups and subscriptions. */
export class Connection {
  readonly subs = new Map<string, Subscription>();
  /** Groups the account belongs to (kept current by membership events). */
  groups = new Set<string>();
  /** Of `groups`, those the account has not accepted yet: its presence stays hidden there. */
  invited = new Set<string>();
  subscribeAll = false;
  presence = false;
  /** The client asked for replays in `msgs` frames (`sub` with `batch: true`). */
  batch = false;
  #closed = false;

  constructor(
    readonly id: number,
    readonly account: string,
    readonly device: string,
    private readonly socket: FrameSocket,
    private readonly maxBuffered: number,
    private readonly onSlow: (conn: Connection) => void,
  ) {}

  get open(): boolean {
    return !this.#closed && this.socket.readyState === 1;
  }

  /** Sends a frame unless the connection is closed or too slow; false when it was not sent. */
  sendText(frame: string): boolean {
    if (!this.open) return false;
    if (this.socket.bufferedAmount > this.maxBuffered) {
      this.onSlow(this);
      return false;
    }
    this.socket.send(frame);
    return true;
  }

  /**
   * For replays: sends frames in order, waiting (up to {@link REPLAY_STALL_MS}) for the client
   * to read its buffer down to half the limit whenever the next frame would take it past the
   * limit; false if the connection closed, or if the client never read, in which case it is
   * closed as too slow. So a replay alone never fills the buffer past the live limit (a frame
   * larger than half of it goes once the buffer is down to half), and a live frame of another
   * group sent meanwhile is not taken for a slow client.
   */
  async sendPaced(frames: readonly string[]): Promise<boolean> {
    for (let i = 0; i < frames.length; i++) {
      const over = this.socket.bufferedAmount + frames[i].length > this.maxBuffered;
      if (over && !(await this.#drained())) return false;
      if (!this.open) return false;
      this.socket.send(frames[i]);
    }
    return true;
  }

  /** Waits until the client has read its buffer down to half the limit; false if it never does. */
  async #drained(): Promise<boolean> {
    const deadline = Date.now() + REPLAY_STALL_MS;
    while (this.open && this.socket.bufferedAmount > this.maxBuffered / 2) {
      if (Date.now() > deadline) {
        this.onSlow(this);
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return this.open;
  }

  /** Sends a frame of the protocol. */
  sendJson(frame: ServerFrame): boolean {
    return this.sendText(JSON.stringify(frame));
  }

  /** Closes the socket with a protocol close code. */
  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const sub of this.subs.values()) sub.close();
    try {
      this.socket.close(code, reason);
    } catch { /* already closed */ }
  }
}

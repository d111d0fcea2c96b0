/**
 * A {@link FrameSocket} for unit tests of the connection and the hub: it records what was sent
 * and closed, and the test sets its `bufferedAmount` (a real socket's buffer cannot be held at
 * an exact size).
 */

import type { FrameSocket } from "../../relay/connection.ts";

/** A socket that records what was sent and lets the test set its buffered amount. */
export class RecordingSocket implements FrameSocket {
  sent: string[] = [];
  closed: { code?: number; reason?: string }[] = [];
  bufferedAmount = 0;
  readyState = 1;
  send(data: string): void {
    this.sent.push(data);
  }
  close(code?: number, reason?: string): void {
    this.closed.push({ code, reason });
    this.readyState = 3;
  }
  frames(): Record<string, unknown>[] {
    return this.sent.map((s) => JSON.parse(s));
  }
}

/**
 * @module
 * In-order, exactly-once handling of delivered messages and their coalesced acks. Messages are
 * handed to the listeners one at a time in arrival order; one is marked seen (and acknowledged)
 * only after every listener returned. When a listener throws, the message is not marked seen and
 * every later frame of that connection is skipped, so after the session reconnects the relay
 * delivers it again from the last seen `seq`.
 */

import type { Message } from "./session_options.ts";

/** What the delivery needs from its session. */
export type DeliveryHost = {
  /** The message listeners, in order. */
  listeners(): ((message: Message) => void | Promise<void>)[];
  /** Emits `synced`. */
  synced(group: string, seq: number): void;
  /** A listener threw for `message` (the `failures`-th time in a row). */
  failed(message: Message, error: unknown, generation: number, failures: number): void;
  /** Sends a frame when connected; false when it could not. */
  send(frame: Record<string, unknown>): boolean;
  autoAck: boolean;
  ackDelayMs: number;
};

/** The seen-line per group, the handling queue and the acks waiting to go out. */
export class Delivery {
  /** Highest `seq` handled per group: the resume point and the dedupe line. */
  readonly seen: Map<string, number> = new Map();
  #host: DeliveryHost;
  #queue: Promise<void> = Promise.resolve();
  #skipGeneration = -1;
  #failures = 0;
  #ackPending = new Map<string, number>();
  #ackTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(host: DeliveryHost) {
    this.#host = host;
  }

  /** Queues a `msg` frame of connection `generation`. */
  message(message: Message, generation: number): void {
    this.#queue = this.#queue.then(() => this.#deliver(message, generation));
  }

  /** Queues a `synced` frame (after the messages before it). */
  synced(group: string, seq: number, generation: number): void {
    this.#queue = this.#queue.then(() => {
      if (generation === this.#skipGeneration) return;
      if ((this.seen.get(group) ?? 0) < seq) this.seen.set(group, seq);
      this.#host.synced(group, seq);
    });
  }

  /** An explicit ack of `seq` supersedes a coalesced one up to it. */
  acked(group: string, seq: number): void {
    if ((this.#ackPending.get(group) ?? -1) <= seq) this.#ackPending.delete(group);
  }

  /** Sends the coalesced acks now (kept for the next connection while disconnected). */
  flushAcks(): void {
    for (const [group, seq] of this.#ackPending) {
      if (!this.#host.send({ t: "ack", group, seq })) return;
      this.#ackPending.delete(group);
    }
  }

  /** Cancels the ack timer (the session closed). */
  stop(): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
  }

  async #deliver(message: Message, generation: number): Promise<void> {
    if (generation === this.#skipGeneration) return;
    if (message.seq <= (this.seen.get(message.group) ?? 0)) return;
    try {
      for (const listener of this.#host.listeners()) await listener(message);
    } catch (error) {
      this.#skipGeneration = generation;
      this.#host.failed(message, error, generation, ++this.#failures);
      return;
    }
    this.#failures = 0;
    this.seen.set(message.group, message.seq);
    if (this.#host.autoAck) this.#queueAck(message.group, message.seq);
  }

  #queueAck(group: string, seq: number): void {
    if ((this.#ackPending.get(group) ?? -1) < seq) this.#ackPending.set(group, seq);
    if (this.#host.ackDelayMs <= 0) return this.flushAcks();
    this.#ackTimer ??= setTimeout(() => {
      this.#ackTimer = undefined;
      this.flushAcks();
    }, this.#host.ackDelayMs);
  }
}

/**
 * @module
 * The open-loop load driver shared by the relay and the bare-WebSocket ceiling. It sends
 * messages at a fixed aggregate rate, round-robin over the senders, whatever the answers do
 * (so a slow relay shows as latency, not as a politely lowered rate), and records for every
 * message its send time, when it was acknowledged and how many recipients received it.
 *
 * A body is `m<id>` padded with `A` to a fixed length that is a multiple of 4, so it is valid
 * base64url (the relay checks) and its id can be read back without decoding. The send time is
 * kept by id in the generator — one clock, so latencies are exact to the microsecond.
 */

import { Latencies, type LatencySummary, round, sleep } from "./stats.ts";

/** One sending connection as the driver sees it. */
export interface LoadClient {
  /** Sends a body; a promise resolves when the relay acknowledges it (null: no acks). */
  send(body: string, id: number): Promise<void> | null;
}

/** Builds a body of `chars` base64url characters carrying `id`. */
export function makeBody(id: number, chars: number): string {
  const head = `m${id}`;
  return head + "A".repeat(Math.max(0, chars - head.length));
}

/** Reads the id back from a body made by {@link makeBody} (NaN for anything else). */
export function bodyId(body: string): number {
  return body.charCodeAt(0) === 109 /* m */ ? parseInt(body.slice(1, 17), 10) : NaN;
}

/** base64url characters for `bytes` decoded bytes, rounded up to a multiple of 4. */
export function bodyChars(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

/** What one run at one rate measured. */
export type LoadResult = {
  offered_rate: number;
  duration_s: number;
  sent: number;
  /** Messages per second the generator managed to send over the window. */
  sent_rate: number;
  /** Largest delay between a message's scheduled and actual send (generator falling behind). */
  generator_max_lag_ms: number;
  acked: number;
  /** Sends neither acknowledged nor refused by the end of the drain time. */
  unacked: number;
  /** Acknowledged messages per second, from the first send to the last ack. */
  acked_rate: number | null;
  errors: Record<string, number>;
  expected_deliveries: number;
  deliveries: number;
  /** Deliveries per second, from the first send to the last delivery. */
  delivery_rate: number;
  /**
   * Messages not received by every recipient: lost when the deliveries stopped (stall), or
   * still in the relay's backlog when `drain_timed_out`.
   */
  lost_messages: number;
  /** True when the relay was still delivering when the drain limit ended the wait. */
  drain_timed_out: boolean;
  missing_deliveries: number;
  duplicate_deliveries: number;
  /** Time after the last send until the last delivery. */
  drain_s: number;
  send_to_receive: LatencySummary;
  send_to_ack: LatencySummary | null;
  /** Per second since the first send: deliveries and the worst send→receive latency (ms). */
  timeline: { delivered: number[]; max_ms: number[] };
};

/** One run: rate, count and bookkeeping. */
export class LoadRun {
  readonly base: number;
  readonly total: number;
  readonly #sendTimes: Float64Array;
  readonly #receipts: Uint8Array;
  readonly #receive = new Latencies();
  readonly #ack = new Latencies();
  readonly #errors: Record<string, number> = {};
  #sent = 0;
  #acked = 0;
  #deliveries = 0;
  #stale = 0;
  #lastAckAt = 0;
  #lastDeliveryAt = 0;
  #startAt = 0;
  #maxLag = 0;
  /** Set when the result is taken: later acks, errors and deliveries are not counted. */
  #frozen = false;
  readonly #perSecondCount: number[] = [];
  readonly #perSecondMax: number[] = [];

  /**
   * @param base first message id of this run (ids of other runs are ignored as stale)
   * @param recipients deliveries each message should get
   */
  constructor(
    base: number,
    readonly rate: number,
    readonly durationS: number,
    readonly recipients: number,
    readonly bodyLength: number,
  ) {
    this.base = base;
    this.total = Math.max(1, Math.round(rate * durationS));
    this.#sendTimes = new Float64Array(this.total);
    this.#receipts = new Uint8Array(this.total);
  }

  /** Call for every message body a recipient receives. */
  onReceive(body: string): void {
    if (this.#frozen) return;
    const index = bodyId(body) - this.base;
    if (!(index >= 0 && index < this.#sent)) {
      this.#stale++;
      return;
    }
    const now = performance.now();
    const latency = now - this.#sendTimes[index];
    this.#receive.add(latency);
    const second = Math.floor((now - this.#startAt) / 1000);
    this.#perSecondCount[second] = (this.#perSecondCount[second] ?? 0) + 1;
    if (!(this.#perSecondMax[second] >= latency)) this.#perSecondMax[second] = latency;
    if (this.#receipts[index] < 255) this.#receipts[index]++;
    this.#deliveries++;
    this.#lastDeliveryAt = now;
  }

  /**
   * Sends at the run's rate over `clients` (round-robin), calls `onSendEnd`, then waits for the
   * remaining deliveries and acks: until all are in, or nothing has arrived for `stallS`
   * seconds (what is missing then is lost), or `maxDrainS` have passed (an overloaded relay
   * still working through its backlog; what is missing is reported as not yet delivered).
   */
  async run(
    clients: LoadClient[],
    stallS = 10,
    onSendEnd?: () => void,
    maxDrainS = 120,
  ): Promise<LoadResult> {
    const interval = 1000 / this.rate;
    this.#startAt = performance.now();
    await new Promise<void>((resolve) => {
      let next = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        const due = Math.min(this.total, Math.floor((now - this.#startAt) / interval) + 1);
        while (this.#sent < due) {
          const index = this.#sent;
          const lag = performance.now() - (this.#startAt + index * interval);
          if (lag > this.#maxLag) this.#maxLag = lag;
          this.#sendOne(clients[next], index);
          next = (next + 1) % clients.length;
        }
        if (this.#sent >= this.total) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    const sendEnd = performance.now();
    onSendEnd?.();
    const expected = this.total * this.recipients;
    const drainDeadline = sendEnd + maxDrainS * 1000;
    let progress = -1;
    let progressAt = performance.now();
    this.#drainTimedOut = true;
    while (performance.now() < drainDeadline) {
      const acksDone = this.#acked + this.#errorCount() >= this.total || !this.#expectAcks;
      if (this.#deliveries >= expected && acksDone) {
        this.#drainTimedOut = false;
        break;
      }
      const now = performance.now();
      const seen = this.#deliveries + this.#acked;
      if (seen !== progress) {
        progress = seen;
        progressAt = now;
      } else if (now - progressAt > stallS * 1000) {
        this.#drainTimedOut = false;
        break;
      }
      await sleep(20);
    }
    return this.#result(sendEnd);
  }

  #expectAcks = false;
  #drainTimedOut = false;

  #errorCount(): number {
    return Object.values(this.#errors).reduce((a, b) => a + b, 0);
  }

  #sendOne(client: LoadClient, index: number): void {
    const id = this.base + index;
    const body = makeBody(id, this.bodyLength);
    const t = performance.now();
    this.#sendTimes[index] = t;
    this.#sent++;
    let acked: Promise<void> | null;
    try {
      acked = client.send(body, id);
    } catch (error) {
      this.#noteError(error);
      return;
    }
    if (!acked) return;
    this.#expectAcks = true;
    acked.then(() => {
      if (this.#frozen) return;
      const now = performance.now();
      this.#ack.add(now - t);
      this.#acked++;
      this.#lastAckAt = now;
    }, (error) => this.#noteError(error));
  }

  #noteError(error: unknown): void {
    if (this.#frozen) return;
    const code = (error as { code?: string })?.code ?? (error as Error)?.message ?? "unknown";
    this.#errors[code] = (this.#errors[code] ?? 0) + 1;
  }

  #result(sendEnd: number): LoadResult {
    this.#frozen = true;
    const window = (sendEnd - this.#startAt) / 1000;
    let lost = 0;
    let missing = 0;
    let duplicates = 0;
    for (let i = 0; i < this.total; i++) {
      const got = this.#receipts[i];
      if (got < this.recipients) {
        lost++;
        missing += this.recipients - got;
      } else if (got > this.recipients) duplicates += got - this.recipients;
    }
    const lastDelivery = this.#lastDeliveryAt || sendEnd;
    return {
      offered_rate: this.rate,
      duration_s: this.durationS,
      sent: this.#sent,
      sent_rate: Math.round(this.#sent / window),
      generator_max_lag_ms: round(this.#maxLag),
      acked: this.#acked,
      unacked: this.#expectAcks ? this.#sent - this.#acked - this.#errorCount() : 0,
      acked_rate: this.#expectAcks
        ? Math.round(this.#acked / ((this.#lastAckAt - this.#startAt) / 1000))
        : null,
      errors: this.#errors,
      expected_deliveries: this.total * this.recipients,
      deliveries: this.#deliveries,
      delivery_rate: Math.round(this.#deliveries / ((lastDelivery - this.#startAt) / 1000)),
      lost_messages: lost,
      drain_timed_out: this.#drainTimedOut,
      missing_deliveries: missing,
      duplicate_deliveries: duplicates,
      drain_s: round(Math.max(0, lastDelivery - sendEnd) / 1000),
      send_to_receive: this.#receive.summary(),
      send_to_ack: this.#expectAcks ? this.#ack.summary() : null,
      timeline: {
        delivered: Array.from(this.#perSecondCount, (n) => n ?? 0),
        max_ms: Array.from(this.#perSecondMax, (n) => Math.round(n ?? 0)),
      },
    };
  }
}

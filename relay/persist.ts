/**
 * @module
 * Group commit: sends that arrive together are written in one transaction and acknowledged only
 * after it commits. The transaction is one statement, `sealpost_commit(...)` (migration 0007),
 * so a batch costs one round trip to Postgres: inside it each touched group's row is locked (in
 * id order, so batches never deadlock), membership and blobs are checked, repeats of a
 * `client_id` are answered with their original `seq`, new messages get the next `seq`s of their
 * group, and the committed ranges are announced on the bus (`pg_notify`, delivered at commit).
 * Because `seq` is assigned under the group row lock in the inserting transaction, commit order
 * equals `seq` order: the rule of order holds for any number of senders and instances. A
 * rejected send never consumes a `seq`. While no other instance listens the bus leaves the
 * announcement out (a NOTIFY would serialize the lanes' commits, fsync included; see
 * `bus/bus_postgres.ts`).
 *
 * Several batches are in flight at once on server Postgres: sends are queued in lanes by group
 * (a group always maps to the same lane, each lane commits one batch at a time), so groups in
 * different lanes never contend and Postgres's WAL group commit absorbs the fsyncs. A lane's
 * batch is everything that queued while its previous commit ran (up to `maxBatch`), so batch size
 * follows the commit time by itself. (A cap that shrank on slow commits was tried and measured
 * worse: a commit is slow mostly from fixed latency — a far primary, a starved CPU — so smaller
 * batches only lowered throughput.) The queue is bounded: past `maxQueuedBytes` a send is
 * refused at once with `unavailable` and a `retry_after_ms` (the client retries under the same
 * `client_id`), so memory stays bounded under overload and nothing acknowledged is lost. After
 * each commit the batch is published on the local bus, one event per group.
 *
 * A sealed send (issue 16) has no sender: instead of membership, the SHA-256 of the capability it
 * presented must equal the group's `send_verifier`, checked in the same statement under the same
 * row lock (`sealpost_commit` of migration 0009, so a rotation orders with sends); its
 * `client_id` is unique per group; it is stored without a sender. The rest is the same path.
 * A send marked `accept` (HTTP) accepts its sender's invitation in the same statement
 * (`sealpost_commit` of migration 0010).
 */

import { sql } from "kysely";
import type { Bus } from "./bus/bus.ts";
import { withSpan } from "./base/trace.ts";
import type { Clock } from "./base/clock.ts";
import type { Db } from "./store/database.ts";
import { DISK_RETRY_MS, groupQuotaReached, isDiskFull, RelayError } from "./errors.ts";
import type { Logger } from "./base/log.ts";
import type { StoredMessage } from "./messages.ts";

/** A validated send waiting for its transaction. */
export type PendingSend = {
  group: string;
  /** Null for a sealed send. */
  account: string | null;
  device: string | null;
  /** A sealed send: hex SHA-256 of the capability it presented. */
  sealedVerifier?: string;
  clientId: string;
  /**
   * The body as the client sent it: canonical base64url, already size-checked. It is stored as
   * bytes (decoded by Postgres in the insert) and reused as is for fan-out.
   */
  bodyText: string;
  ttlS?: number;
  to?: string[];
  /** The referenced blob, already checked by the blob policy. */
  blob?: { id: string; size: number };
  /**
   * The sender's membership may still be an invitation (an HTTP send): the commit accepts it
   * under the group's row lock (migration 0010), within `maxGroupsPerAccount`.
   */
  accept?: boolean;
};

/** The outcome of a send. */
export type SendResult = {
  seq: number;
  created_at: number;
  expires_at: number | null;
  /** True when this `client_id` had been sent before: the original result is returned. */
  duplicate: boolean;
  /** This send accepted its sender's invitation (`accept`); the caller announces it. */
  accepted?: true;
};

type Waiting = PendingSend & {
  queuedAt: number;
  /** What the send counts against the queue bound. */
  bytes: number;
  resolve(result: SendResult): void;
  reject(error: unknown): void;
};

/** What group commit writes to and how long it gathers sends (`windowMs`). */
export type GroupCommitOptions = {
  db: Db;
  bus: Bus;
  clock: Clock;
  log: Logger;
  /** Server cap on any TTL in ms; null = forever. */
  maxTtlMs: number | null;
  /** How long the first send of a batch waits for company. */
  windowMs: number;
  /** Largest batch in one transaction ({@link MAX_BATCH}). */
  maxBatch?: number;
  /**
   * Batches in flight at once (lanes by group); 1 for PGlite's single connection. Keep it below
   * the pool size so reads still get connections.
   */
  lanes?: number;
  /**
   * Queued bytes (bodies plus a fixed overhead per send) past which sends are refused with
   * `unavailable`; default unbounded.
   */
  maxQueuedBytes?: number;
  /** The accepted-group quota applied to sends that accept an invitation; default none. */
  maxGroupsPerAccount?: number;
  /** Called after each commit with the batch size, the sends' wait times and new bytes. */
  onBatch?: (size: number, waitsMs: number[], newMessages: number, newBytes: number) => void;
  /**
   * Called on the committing instance only, after the commit, with the new messages per group
   * (push wake-ups); must return at once and never throw.
   */
  onCommitted?: (published: StoredMessage[][]) => void;
};

/**
 * Largest batch in one transaction, by default. (After five calls in a session PL/pgSQL runs
 * `sealpost_commit`'s statements with generic plans, which join the batch with itself by nested
 * loop: a batch of 1,000 in one group filtered 999,000 row pairs, 130 of its 176 ms. A cap of 200
 * made the group commit alone faster for one group with 1,000 sends in flight, but not the relay
 * over WebSocket, so it stays 1,000 until the statement is fixed; `bench/README.md`, "The live
 * path".)
 */
export const MAX_BATCH = 1000;

/**
 * What the queue bound counts for a send besides its body: about what a queued send holds on the
 * relay's heap beyond its body's characters, so `SEALPOST_COMMIT_QUEUE_BYTES` is close to the
 * memory the queue takes. Measured by `deno task bench --scenario queue`: 2,463 bytes per queued
 * send with an 88-character body, 2,713 with 344 (2026-12-02; bench/README.md "Overload memory").
 */
export const SEND_OVERHEAD_BYTES = 2_400;

/**
 * Computes a message's expiry: `ttl_s` capped by the group's retention, capped by the server's
 * max TTL. `retention_s` 0 means "as long as the server allows". Returns null for forever.
 * (`sealpost_commit` computes the same in SQL.)
 */
export function expiryOf(
  createdAt: number,
  ttlS: number | undefined,
  retentionS: number,
  maxTtlMs: number | null,
): number | null {
  const maxS = maxTtlMs === null ? Infinity : Math.floor(maxTtlMs / 1000);
  const capS = retentionS > 0 ? Math.min(retentionS, maxS) : maxS;
  const lifeS = ttlS !== undefined ? Math.min(ttlS, capS) : capS;
  return lifeS === Infinity ? null : createdAt + lifeS * 1000;
}

/** The lane of `group` among `lanes`: FNV-1a of its id, so a group always maps to one lane. */
export function laneOf(group: string, lanes: number): number {
  if (lanes <= 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < group.length; i++) {
    hash ^= group.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % lanes;
}

/** One lane: its queue, its timer and whether a batch of it is in flight. */
type Lane = {
  queue: Waiting[];
  timer: ReturnType<typeof setTimeout> | undefined;
  running: boolean;
};

type OutcomeRow = {
  i: number;
  group_id: string;
  verdict: "ok" | "accepted" | "no_group" | "no_blob" | "group_quota";
  seq: number | null;
  created_at: number | null;
  expires_at: number | null;
  duplicate: boolean | null;
};

/** Batches sends into transactions, several lanes at once. */
export class GroupCommit {
  readonly #lanes: Lane[];
  readonly #maxBatch: number;
  readonly #maxQueuedBytes: number;
  #queuedBytes = 0;
  #queued = 0;
  /** Sends committed per ms, a moving average (for `retry_after_ms`). */
  #rate = 0;
  #idle: (() => void)[] = [];

  constructor(private readonly options: GroupCommitOptions) {
    this.#maxBatch = options.maxBatch ?? MAX_BATCH;
    this.#maxQueuedBytes = options.maxQueuedBytes ?? Infinity;
    const count = Math.max(1, Math.floor(options.lanes ?? 1));
    this.#lanes = Array.from(
      { length: count },
      () => ({ queue: [], timer: undefined, running: false }),
    );
  }

  /** Sends waiting for (or in) a transaction. */
  get queued(): number {
    return this.#queued;
  }

  /** Bytes counted against the queue bound. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Queues a send; resolves once it is durable (or rejects with a RelayError). Past the queue
   * bound it rejects at once with `unavailable` and a `retry_after_ms`.
   */
  submit(send: PendingSend): Promise<SendResult> {
    const bytes = send.bodyText.length + SEND_OVERHEAD_BYTES;
    if (this.#queuedBytes + bytes > this.#maxQueuedBytes) {
      return Promise.reject(
        new RelayError(
          "unavailable",
          "The relay is busy committing; retry with the same client_id",
          this.#retryAfterMs(),
        ),
      );
    }
    this.#queuedBytes += bytes;
    this.#queued++;
    return new Promise((resolve, reject) => {
      const lane = this.#lanes[laneOf(send.group, this.#lanes.length)];
      lane.queue.push({ ...send, bytes, queuedAt: performance.now(), resolve, reject });
      this.#schedule(lane);
    });
  }

  /** About how long the queue takes to drain half way, from the recent commit rate. */
  #retryAfterMs(): number {
    const ms = this.#rate > 0 ? this.#queued / 2 / this.#rate : 1000;
    return Math.round(Math.min(5000, Math.max(100, ms)));
  }

  /** Resolves when nothing is queued or in flight (drain). */
  idle(): Promise<void> {
    if (this.#quiet()) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #quiet(): boolean {
    return this.#queued === 0 && this.#lanes.every((lane) => !lane.running);
  }

  #schedule(lane: Lane): void {
    if (lane.running || lane.timer !== undefined) return;
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      this.#run(lane);
    }, this.options.windowMs);
  }

  async #run(lane: Lane): Promise<void> {
    if (lane.running) return;
    lane.running = true;
    try {
      while (lane.queue.length > 0) {
        const batch = lane.queue.splice(0, this.#maxBatch);
        const t0 = performance.now();
        await this.#commit(batch);
        const ms = performance.now() - t0;
        this.#observe(batch.length, ms);
      }
    } finally {
      lane.running = false;
      if (lane.queue.length > 0) this.#schedule(lane);
      else if (this.#quiet()) { for (const resolve of this.#idle.splice(0)) resolve(); }
    }
  }

  /** Tracks the commit rate, for `retry_after_ms`. */
  #observe(size: number, ms: number): void {
    const rate = size / Math.max(ms, 0.1);
    this.#rate = this.#rate === 0 ? rate : this.#rate * 0.8 + rate * 0.2;
  }

  #commit(batch: Waiting[]): Promise<void> {
    return withSpan(
      "sealpost.group_commit",
      { "sealpost.batch_size": batch.length },
      () => this.#commitBatch(batch),
    );
  }

  async #commitBatch(batch: Waiting[]): Promise<void> {
    let published: StoredMessage[][] = [];
    try {
      published = await this.#transaction(batch);
    } catch (error) {
      if ((error as { code?: string })?.code === "23505" && batch.length > 0) {
        // A concurrent instance committed the same client_id between our check and insert;
        // the retry sees it and answers with its seq.
        try {
          published = await this.#transaction(batch);
        } catch (retryError) {
          this.#failAll(batch, retryError);
          return;
        }
      } else {
        this.#failAll(batch, error);
        return;
      }
    }
    const now = performance.now();
    let newBytes = 0;
    let newMessages = 0;
    for (const messages of published) {
      newMessages += messages.length;
      for (const m of messages) newBytes += Math.floor(m.body.length * 3 / 4);
    }
    this.options.onBatch?.(batch.length, batch.map((s) => now - s.queuedAt), newMessages, newBytes);
    for (const messages of published) {
      this.options.bus.publish({ kind: "messages", group: messages[0].group, messages });
    }
    if (published.length > 0) this.options.onCommitted?.(published);
  }

  /** Takes a finished batch off the queue bound; called once per batch, before answering. */
  #release(batch: Waiting[]): void {
    for (const send of batch) this.#queuedBytes -= send.bytes;
    this.#queued -= batch.length;
  }

  #failAll(batch: Waiting[], error: unknown): void {
    this.#release(batch);
    if (!(error instanceof RelayError)) {
      this.options.log.error("group commit failed", { error, batch: batch.length });
    }
    const answer = error instanceof RelayError ? error : isDiskFull(error)
      ? new RelayError(
        "unavailable",
        "The relay's disk is full; retry later with the same client_id",
        DISK_RETRY_MS,
      )
      : new RelayError(
        "unavailable",
        "The message store is unavailable; retry with the same client_id",
      );
    for (const send of batch) send.reject(answer);
  }

  /** One statement (its own transaction) for the whole batch; returns the new messages per group. */
  async #transaction(batch: Waiting[]): Promise<StoredMessage[][]> {
    const { db, clock, maxTtlMs, bus } = this.options;
    const now = clock.now();
    const announcement = bus.announcement?.() ?? null;
    // One parameter per column, not one per value: cheap to build and to parse at any size.
    // (Booleans go as text: postgres.js sends a boolean array as one boolean.)
    let result;
    try {
      result = await sql<OutcomeRow>`
      select * from sealpost_commit(
        ${batch.map((s) => s.group)}::text[], ${batch.map((s) => s.account)}::text[],
        ${batch.map((s) => s.device)}::text[], ${batch.map((s) => s.clientId)}::text[],
        ${batch.map((s) => s.bodyText)}::text[], ${batch.map((s) => s.ttlS ?? null)}::bigint[],
        ${batch.map((s) => s.blob?.id ?? null)}::text[],
        ${batch.map((s) => s.blob?.size ?? null)}::bigint[],
        ${batch.map((s) => s.to?.join(",") ?? null)}::text[],
        ${now}::bigint, ${maxTtlMs}::bigint, ${announcement?.channel ?? null}::text,
        ${announcement?.origin ?? null}::text,
        ${batch.map((s) => s.sealedVerifier ?? null)}::text[],
        ${batch.map((s) => s.accept === true ? "t" : "f")}::text[]::boolean[],
        ${this.options.maxGroupsPerAccount ?? null}::bigint)`.execute(db);
    } finally {
      announcement?.settled();
    }

    this.#release(batch);
    const perGroup = new Map<string, StoredMessage[]>();
    const acceptedNow = new Set<string>();
    const rows = result.rows;
    for (let k = 0; k < batch.length; k++) {
      const send = batch[k];
      const row = rows[k];
      if (!row || Number(row.i) !== k + 1) {
        send.reject(new RelayError("internal"));
        continue;
      }
      if (row.verdict === "no_group") {
        send.reject(new RelayError("not_found", "No such group"));
        continue;
      }
      if (row.verdict === "no_blob") {
        send.reject(new RelayError("not_found", "No such blob"));
        continue;
      }
      if (row.verdict === "group_quota") {
        send.reject(groupQuotaReached(this.options.maxGroupsPerAccount!));
        continue;
      }
      const outcome: SendResult = {
        seq: Number(row.seq),
        created_at: Number(row.created_at),
        expires_at: row.expires_at === null ? null : Number(row.expires_at),
        duplicate: row.duplicate === true,
      };
      // One announcement per acceptance, however many of the sender's sends the batch holds.
      if (row.verdict === "accepted" && !acceptedNow.has(`${send.group} ${send.account}`)) {
        acceptedNow.add(`${send.group} ${send.account}`);
        outcome.accepted = true;
      }
      send.resolve(outcome);
      if (outcome.duplicate) continue;
      const message: StoredMessage = {
        group: send.group,
        seq: outcome.seq,
        from: send.account === null || send.device === null
          ? null
          : { account: send.account, device: send.device },
        created_at: outcome.created_at,
        expires_at: outcome.expires_at,
        body: send.bodyText,
      };
      if (send.blob) message.blob = send.blob;
      if (send.to) message.to = send.to;
      const list = perGroup.get(send.group);
      if (list) list.push(message);
      else perGroup.set(send.group, [message]);
    }
    // Inside a group the statement assigns seqs in batch order, so each list is ascending.
    return [...perGroup.values()];
  }
}

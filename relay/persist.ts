/**
 * @module
 * Group commit: sends that arrive together are written in one transaction and acknowledged only
 * after it commits. Inside the transaction each touched group's row is locked (in id order, so
 * batches never deadlock), membership is checked, repeats of a `client_id` are answered with
 * their original `seq`, and new messages get the next `seq`s of their group. Because `seq` is
 * assigned under the group row lock in the inserting transaction, commit order equals `seq`
 * order: the rule of order holds for any number of senders and instances. A rejected send never
 * consumes a `seq`. After the commit the batch is published on the bus, one event per group.
 */

import { sql } from "kysely";
import { extendBlobLives, lockLiveBlobs } from "./blobs/policy.ts";
import type { Bus } from "./bus/bus.ts";
import { withSpan } from "./base/trace.ts";
import type { Clock } from "./base/clock.ts";
import type { Db } from "./store/database.ts";
import { DISK_RETRY_MS, isDiskFull, RelayError } from "./errors.ts";
import type { Logger } from "./base/log.ts";
import type { StoredMessage } from "./messages.ts";

/** A validated send waiting for its transaction. */
export type PendingSend = {
  group: string;
  account: string;
  device: string;
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
};

/** The outcome of a send. */
export type SendResult = {
  seq: number;
  created_at: number;
  expires_at: number | null;
  /** True when this `client_id` had been sent before: the original result is returned. */
  duplicate: boolean;
};

type Waiting = PendingSend & {
  queuedAt: number;
  resolve(result: SendResult): void;
  reject(error: unknown): void;
};

/** Options of the committer. */
export type GroupCommitOptions = {
  db: Db;
  bus: Bus;
  clock: Clock;
  log: Logger;
  /** Server cap on any TTL in ms; null = forever. */
  maxTtlMs: number | null;
  /** How long the first send of a batch waits for company. */
  windowMs: number;
  /** Largest batch in one transaction. */
  maxBatch?: number;
  /** Called after each commit with the batch size, the sends' wait times and new bytes. */
  onBatch?: (size: number, waitsMs: number[], newMessages: number, newBytes: number) => void;
  /**
   * Called on the committing instance only, after the commit, with the new messages per group
   * (push wake-ups); must return at once and never throw.
   */
  onCommitted?: (published: StoredMessage[][]) => void;
};

/**
 * Computes a message's expiry: `ttl_s` capped by the group's retention, capped by the server's
 * max TTL. `retention_s` 0 means "as long as the server allows". Returns null for forever.
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

/** Batches sends into transactions. */
export class GroupCommit {
  #queue: Waiting[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #idle: (() => void)[] = [];
  readonly #maxBatch: number;

  constructor(private readonly options: GroupCommitOptions) {
    this.#maxBatch = options.maxBatch ?? 1000;
  }

  /** Queues a send; resolves once it is durable (or rejects with a RelayError). */
  submit(send: PendingSend): Promise<SendResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ ...send, queuedAt: performance.now(), resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves when nothing is queued or in flight (drain). */
  idle(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#running || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#run();
    }, this.options.windowMs);
  }

  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#maxBatch);
        await this.#commit(batch);
      }
    } finally {
      this.#running = false;
      if (this.#queue.length > 0) this.#schedule();
      else for (const resolve of this.#idle.splice(0)) resolve();
    }
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

  #failAll(batch: Waiting[], error: unknown): void {
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

  /** One transaction for the whole batch; returns the new messages per group. */
  async #transaction(batch: Waiting[]): Promise<StoredMessage[][]> {
    const { db, clock, maxTtlMs } = this.options;
    const outcomes = new Map<Waiting, SendResult | RelayError>();
    const perGroup = new Map<string, StoredMessage[]>();

    await db.transaction().execute(async (tx) => {
      outcomes.clear();
      perGroup.clear();
      const groupIds = [...new Set(batch.map((s) => s.group))].sort();
      const accounts = [...new Set(batch.map((s) => s.account))];
      // NO KEY UPDATE: it orders this group's writers but lets foreign-key checks (cursor and
      // membership inserts elsewhere take KEY SHARE on the group row) through, so they can never
      // deadlock with a commit.
      const locked = await sql<{ id: string; last_seq: number; retention_s: number }>`
        select id, last_seq, retention_s from groups
        where id = any(${groupIds}::text[]) order by id for no key update`.execute(tx);
      const groups = new Map(locked.rows.map((g) => [g.id, { ...g }]));
      const members = await sql<{ group_id: string; account_id: string }>`
        select group_id, account_id from group_members
        where group_id = any(${groupIds}::text[]) and account_id = any(${accounts}::text[])`
        .execute(tx);
      const isMember = new Set(members.rows.map((m) => `${m.group_id} ${m.account_id}`));
      const blobGroup = await lockLiveBlobs(tx, batch, clock.now());

      const candidates = batch.filter((send) => {
        if (!groups.has(send.group) || !isMember.has(`${send.group} ${send.account}`)) {
          outcomes.set(send, new RelayError("not_found", "No such group"));
          return false;
        }
        if (send.blob && blobGroup.get(send.blob.id) !== send.group) {
          outcomes.set(send, new RelayError("not_found", "No such blob"));
          return false;
        }
        return true;
      });

      const earlier = new Map<string, SendResult>();
      if (candidates.length > 0) {
        const found = await sql<
          {
            group_id: string;
            sender_device: string;
            client_id: string;
            seq: number;
            created_at: number;
            expires_at: number | null;
          }
        >`
          select m.group_id, m.sender_device, m.client_id, m.seq, m.created_at, m.expires_at
          from unnest(${candidates.map((s) => s.group)}::text[],
                      ${candidates.map((s) => s.device)}::text[],
                      ${candidates.map((s) => s.clientId)}::text[]) as k(g, d, c)
          -- LATERAL: one index probe per send, never a scan of the whole table
          cross join lateral (
            select * from messages m
            where m.group_id = k.g and m.sender_device = k.d and m.client_id = k.c
          ) m`.execute(tx);
        for (const row of found.rows) {
          earlier.set(`${row.group_id} ${row.sender_device} ${row.client_id}`, {
            seq: row.seq,
            created_at: row.created_at,
            expires_at: row.expires_at,
            duplicate: true,
          });
        }
      }

      const now = clock.now();
      const rows = [];
      for (const send of candidates) {
        const key = `${send.group} ${send.device} ${send.clientId}`;
        const before = earlier.get(key);
        if (before) {
          outcomes.set(send, { ...before, duplicate: true });
          continue;
        }
        const group = groups.get(send.group)!;
        group.last_seq += 1;
        const expires_at = expiryOf(now, send.ttlS, group.retention_s, maxTtlMs);
        const result = { seq: group.last_seq, created_at: now, expires_at, duplicate: false };
        earlier.set(key, result);
        outcomes.set(send, result);
        rows.push({
          group_id: send.group,
          seq: result.seq,
          sender_account: send.account,
          sender_device: send.device,
          client_id: send.clientId,
          body: send.bodyText,
          blob_id: send.blob?.id ?? null,
          blob_size: send.blob?.size ?? null,
          to_devices: send.to ?? null,
          created_at: now,
          expires_at,
        });
        const message: StoredMessage = {
          group: send.group,
          seq: result.seq,
          from: { account: send.account, device: send.device },
          created_at: now,
          expires_at,
          body: send.bodyText,
        };
        if (send.blob) message.blob = send.blob;
        if (send.to) message.to = send.to;
        const list = perGroup.get(send.group) ?? [];
        list.push(message);
        perGroup.set(send.group, list);
      }
      if (rows.length === 0) return;
      // One parameter per column (unnest), not one per value: cheap to build and to parse at
      // any batch size. Postgres decodes the base64url bodies into bytea.
      await sql`
        insert into messages (group_id, seq, sender_account, sender_device, client_id, body,
                              blob_id, blob_size, to_devices, created_at, expires_at)
        select g, s, a, d, c,
               decode(translate(b, '-_', '+/') || repeat('=', (4 - length(b) % 4) % 4), 'base64'),
               bl, bs, case when t is null then null else string_to_array(t, ',') end, ${now}, e
        from unnest(
          ${rows.map((r) => r.group_id)}::text[], ${rows.map((r) => r.seq)}::bigint[],
          ${rows.map((r) => r.sender_account)}::text[], ${rows.map((r) => r.sender_device)}::text[],
          ${rows.map((r) => r.client_id)}::text[], ${rows.map((r) => r.body)}::text[],
          ${rows.map((r) => r.blob_id)}::text[], ${rows.map((r) => r.blob_size)}::bigint[],
          ${rows.map((r) => r.to_devices?.join(",") ?? null)}::text[],
          ${rows.map((r) => r.expires_at)}::bigint[]
        ) as u(g, s, a, d, c, b, bl, bs, t, e)`.execute(tx);
      await extendBlobLives(tx, rows, now);
      await this.options.bus.announce(
        tx,
        [...perGroup].map(([group, list]) => ({ group, from: list[0].seq, to: list.at(-1)!.seq })),
      );
      const touched = [...perGroup.keys()];
      await sql`
        update groups g set last_seq = u.last_seq
        from unnest(${touched}::text[], ${touched.map((id) => groups.get(id)!.last_seq)}::bigint[])
          as u(id, last_seq)
        where g.id = u.id`.execute(tx);
    });

    for (const send of batch) {
      const outcome = outcomes.get(send);
      if (outcome instanceof RelayError) send.reject(outcome);
      else if (outcome) send.resolve(outcome);
      else send.reject(new RelayError("internal"));
    }
    return [...perGroup.values()];
  }
}

/**
 * @module
 * The bus across instances on Postgres `LISTEN/NOTIFY` — no extra service. One notification per
 * group-commit batch carries only `seq` ranges (sent inside the committing transaction, so it is
 * delivered exactly when the messages become visible); receivers read the messages from the
 * database once per instance, and only for groups someone here follows. Other events
 * (membership, revocation, presence, ephemeral) travel as JSON; one too large for Postgres's
 * 8,000-byte payload limit is spilled to a table and fetched by id.
 *
 * The listening connection is dedicated (not from the pool) and reconnects by itself; after a
 * reconnect the bus calls its `onGap` handlers so the hub reads back whatever was committed
 * while it was deaf — nothing published meanwhile is missed.
 *
 * **Alone, commits are not announced.** A NOTIFY takes a cluster-wide lock from just before its
 * transaction commits until after the commit's WAL flush, so notifying commits are serialized,
 * fsync included, and lanes of group commit would wait on each other for nothing when no other
 * instance listens. So each listener names itself (`application_name` `sealpost-listen <id>`),
 * says `hello` on the channel whenever it (re)starts listening, and every
 * {@link SOLO_CHECK_MS} a bus looks in `pg_stat_activity` for other listeners of its database:
 * with none, its commits go out without a NOTIFY. A bus that committed alone and then hears a
 * `hello` (or sees another listener) announces again from its next commit, waits for the
 * unannounced commits still in flight, and then sends a `resync`: every other instance reads
 * back from the database, as after a reconnect, so what it committed alone while the newcomer
 * was starting is delivered there too. A check that began before a `hello` arrived is ignored,
 * so a stale "alone" never silences a bus that has just heard of a newcomer.
 */

import { type Kysely, sql } from "kysely";
import postgres from "postgres";
import type { Announcement, Bus, BusEvent, SeqRange } from "./bus.ts";
import type { Db } from "../store/database.ts";
import type { Logger } from "../base/log.ts";
import { randomId } from "../base/encoding.ts";
import { readRanges, type StoredMessage } from "../messages.ts";
import type { Database } from "../store/schema.ts";

/** The notification channel. */
export const CHANNEL = "sealpost_bus";
/** Postgres refuses payloads of 8,000 bytes or more; stay below with room to spare. */
const MAX_PAYLOAD = 7_500;
/** Published events sent per statement. */
const PUBLISH_BATCH = 200;
/** How often a bus looks for other instances' listeners (default). */
export const SOLO_CHECK_MS = 2_000;
/** The `application_name` prefix of every bus listener. */
export const LISTENER_NAME = "sealpost-listen";

type Wire =
  | { o: string; k: "m"; r: [string, number, number][] }
  | { o: string; k: "e"; e: BusEvent; n?: number }
  | { o: string; k: "s"; id: number }
  /** A listener (re)started: whoever committed alone announces again. */
  | { o: string; k: "h" }
  /** Read everything back: the sender committed unannounced while a newcomer started. */
  | { o: string; k: "r" };

/** A received notification waiting its turn, or the marker of a listener reconnect. */
type QueueItem = { wire: Wire } | { gap: true };

/** Where the Postgres bus listens (a dedicated connection), writes (the pool) and reports. */
export type PostgresBusOptions = {
  /** URL of the primary, for the dedicated listening connection. */
  url: string;
  db: Db;
  instanceId: string;
  log: Logger;
  /** Whether anyone on this instance follows `group` (else its messages are not read). */
  wants?: (group: string) => boolean;
  /** Called with the lag between a notification's send and its handling (metrics). */
  onLag?: (ms: number) => void;
  /** How often to look for other listeners ({@link SOLO_CHECK_MS}); the first look waits as long. */
  soloCheckMs?: number;
};

/**
 * `url` without an `application_name` parameter. postgres.js lets one in the URL override the
 * `connection.application_name` option, and a listener not named {@link LISTENER_NAME} is
 * invisible to the others' solo check: every instance would think itself alone and stop
 * announcing its commits.
 */
export function listenerUrl(url: string): string {
  const at = url.indexOf("?");
  if (at < 0) return url;
  const query = new URLSearchParams(url.slice(at + 1));
  if (!query.has("application_name")) return url;
  query.delete("application_name");
  const rest = query.toString();
  return url.slice(0, at) + (rest ? "?" + rest : "");
}

/** A bus over Postgres LISTEN/NOTIFY. */
export class PostgresBus implements Bus {
  #handlers = new Set<(event: BusEvent) => void>();
  #gapHandlers = new Set<() => void>();
  #listener: postgres.Sql;
  #pending: QueueItem[] = [];
  #draining = false;
  #listens = 0;
  #closed = false;
  /** Events published here and not yet sent, in publish order. */
  #outgoing: Wire[] = [];
  /** The background send of {@link #outgoing}; `close` waits for it. */
  #sending: Promise<void> | null = null;
  /** Numbers each published event, so Postgres never folds two equal payloads of one batch. */
  #published = 0;
  #wants: (group: string) => boolean;
  /** This listener's `application_name`, unique to this bus. */
  readonly #name = `${LISTENER_NAME} ${randomId(12)}`;
  /** True while no other instance listens: commits are not announced. Starts false. */
  #solo = false;
  /** Counts `hello`s heard, so a check that began before one is ignored. */
  #hellos = 0;
  /** Unannounced commits in flight, and who waits for them to settle. */
  #silent = 0;
  #silentWaiters: (() => void)[] = [];
  #soloTimer: ReturnType<typeof setInterval> | undefined;
  /** Whether the listening connection is up: false once a check misses it, true when it listens. */
  #hearing = false;
  /** Checks in a row that did not find this bus's listener connected. */
  #missing = 0;
  #relistening = false;

  private constructor(private readonly options: PostgresBusOptions) {
    this.#wants = options.wants ?? (() => true);
    this.#listener = this.#newListener();
  }

  #newListener(): postgres.Sql {
    return postgres(listenerUrl(this.options.url), {
      max: 1,
      onnotice: () => {},
      connection: { application_name: this.#name },
    });
  }

  /** Connects the listening connection and starts receiving. */
  static async start(options: PostgresBusOptions): Promise<PostgresBus> {
    const bus = new PostgresBus(options);
    await bus.#listen();
    bus.#soloTimer = setInterval(() => bus.#checkSolo(), options.soloCheckMs ?? SOLO_CHECK_MS);
    return bus;
  }

  #listen(): Promise<unknown> {
    return this.#listener.listen(
      CHANNEL,
      (payload) => this.#receive(payload),
      () => this.#onListen(),
    );
  }

  /**
   * Replaces a listener that is gone for good: postgres.js re-listens after its connection
   * closes, but if that one attempt fails (the database still down or refusing connections) it
   * never tries again. The old client is ended first, so two never listen at once.
   */
  async #relisten(): Promise<void> {
    if (this.#relistening || this.#closed) return;
    this.#relistening = true;
    const old = this.#listener;
    this.#listener = this.#newListener();
    try {
      await old.end({ timeout: 0 }).catch(() => {});
      if (this.#closed) return;
      this.options.log.warn("bus listener lost; listening again");
      await this.#listen();
    } catch {
      // Still unreachable: the next check tries again.
    } finally {
      this.#relistening = false;
    }
  }

  /** True while this bus commits unannounced (no other listener seen). */
  get solo(): boolean {
    return this.#solo;
  }

  /** Looks for other listeners of this database; with none, commits stop being announced. */
  async #checkSolo(): Promise<void> {
    const hellos = this.#hellos;
    let others: number;
    let mine: number;
    try {
      const result = await sql<{ others: number; mine: number }>`
        select count(*) filter (where application_name <> ${this.#name})::int as others,
               count(*) filter (where application_name = ${this.#name})::int as mine
        from pg_stat_activity
        where datname = current_database() and application_name like ${LISTENER_NAME + "%"}`
        .execute(this.options.db);
      others = Number(result.rows[0]?.others ?? 1);
      mine = Number(result.rows[0]?.mine ?? 1);
    } catch {
      return; // the database is unreachable: commits fail too; look again next time
    }
    if (this.#closed) return;
    if (mine === 0) {
      // Deaf: another instance's events (a revocation) could go unheard. Give postgres.js's own
      // reconnect one more check, then listen from a new client.
      this.#hearing = false;
      if (++this.#missing >= 2) void this.#relisten();
    } else this.#missing = 0;
    // A hello heard meanwhile is newer than what this check saw.
    if (this.#closed || hellos !== this.#hellos) return;
    if (others === 0) {
      if (!this.#solo) {
        this.options.log.info("bus: no other instance listens; commits go unannounced");
      }
      this.#solo = true;
    } else if (this.#solo) this.#joined(); // a listener that said no hello (an older version)
  }

  /**
   * Another instance listens now: announce from the next commit on, and once the commits that
   * went out unannounced have settled, tell every instance to read back.
   */
  #joined(): void {
    if (!this.#solo) return;
    this.#solo = false;
    this.options.log.info("bus: another instance listens; announcing commits again");
    const resync = () => this.#send({ o: this.options.instanceId, k: "r" });
    if (this.#silent === 0) resync();
    else this.#silentWaiters.push(resync);
  }

  /** Sets where bus lag is reported (metrics). */
  setLagObserver(fn: (ms: number) => void): void {
    this.options.onLag = fn;
  }

  /** Sets which groups this instance follows. */
  setInterest(wants: (group: string) => boolean): void {
    this.#wants = wants;
  }

  /** True while the listening connection is up (see {@link Bus.hearing}). */
  get hearing(): boolean {
    return this.#hearing;
  }

  #onListen(): void {
    this.#hearing = true;
    this.#listens++;
    // Whoever commits alone must announce again before anything here could miss it.
    this.#send({ o: this.options.instanceId, k: "h" });
    if (this.#listens === 1) return;
    this.options.log.warn("bus listener reconnected; reading back what may have been missed");
    // Handled after everything already queued, so the read-back comes last.
    this.#enqueue({ gap: true });
  }

  #receive(payload: string): void {
    let wire: Wire;
    try {
      wire = JSON.parse(payload) as Wire;
    } catch {
      return;
    }
    if (wire.o === this.options.instanceId) return;
    if (wire.k === "h") {
      this.#hellos++;
      this.#joined();
      return;
    }
    this.#enqueue({ wire });
  }

  #enqueue(item: QueueItem): void {
    this.#pending.push(item);
    if (!this.#draining) this.#drain();
  }

  /**
   * Handles queued notifications in order. Runs of consecutive range notifications are merged
   * and read with one query, so a busy cluster costs one read per instance per moment, not one
   * per commit elsewhere.
   */
  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#pending.length > 0) {
        const item = this.#pending.shift()!;
        try {
          if ("gap" in item || item.wire.k === "r") {
            for (const handler of this.#gapHandlers) handler();
            continue;
          }
          let wire: Wire = item.wire;
          if (wire.k === "s") {
            const row = await sql<{ payload: string }>`
              select payload from bus_spill where id = ${wire.id}`.execute(this.options.db);
            if (!row.rows[0]) continue;
            wire = JSON.parse(row.rows[0].payload) as Wire;
          }
          if (wire.k === "e") {
            this.#emit(wire.e);
            continue;
          }
          if (wire.k !== "m") continue;
          const ranges = wire.r.map(([group, from, to]) => ({ group, from, to }));
          while (
            this.#pending[0] && "wire" in this.#pending[0] && this.#pending[0].wire.k === "m"
          ) {
            const next = this.#pending.shift() as { wire: Extract<Wire, { k: "m" }> };
            for (const [group, from, to] of next.wire.r) ranges.push({ group, from, to });
          }
          await this.#deliverRanges(ranges);
        } catch (error) {
          this.options.log.error("bus notification failed; reading back", { error });
          for (const handler of this.#gapHandlers) handler();
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  /** Reads the messages of `ranges` (merged per group) once and emits them per group. */
  async #deliverRanges(ranges: SeqRange[]): Promise<void> {
    const merged = new Map<string, SeqRange>();
    for (const r of ranges) {
      const m = merged.get(r.group);
      if (!m) merged.set(r.group, { ...r });
      else {
        m.from = Math.min(m.from, r.from);
        m.to = Math.max(m.to, r.to);
      }
    }
    const wanted = [...merged.values()].filter((r) => this.#wants(r.group));
    const messages = await readRanges(this.options.db, wanted);
    const byGroup = new Map<string, StoredMessage[]>();
    for (const message of messages) {
      const list = byGroup.get(message.group);
      if (list) list.push(message);
      else byGroup.set(message.group, [message]);
    }
    const now = Date.now();
    for (const group of merged.keys()) {
      const list = byGroup.get(group) ?? [];
      if (list[0]) this.options.onLag?.(now - list[list.length - 1].created_at);
      this.#emit({ kind: "messages", group, messages: list });
    }
  }

  #emit(event: BusEvent): void {
    for (const handler of this.#handlers) {
      try {
        handler(event);
      } catch (error) {
        this.options.log.error("bus handler failed", { error, kind: event.kind });
      }
    }
  }

  /**
   * Delivers locally at once, and queues the event for the other instances. Queued events go out
   * in publish order, in batches of one statement each (one session, so the others receive them
   * in that order; separate statements on a pool would race and reorder them).
   */
  publish(event: BusEvent): void {
    this.#emit(event);
    if (event.kind === "messages") return;
    this.#send({ o: this.options.instanceId, k: "e", e: event, n: ++this.#published });
  }

  /** Queues a notification for the other instances (sent in order, in the background). */
  #send(wire: Wire): void {
    if (this.#closed) return;
    this.#outgoing.push(wire);
    this.#sending ??= this.#sendOutgoing().finally(() => this.#sending = null);
  }

  async #sendOutgoing(): Promise<void> {
    while (this.#outgoing.length > 0) {
      const batch = this.#outgoing.splice(0, PUBLISH_BATCH);
      try {
        const payloads: string[] = [];
        for (const wire of batch) payloads.push(await this.#payload(this.options.db, wire));
        await sql`
          select pg_notify(${CHANNEL}, p)
          from unnest(${payloads}::text[]) with ordinality as u(p, n)`.execute(this.options.db);
      } catch (error) {
        this.options.log.error("bus publish failed", { error, events: batch.length });
      }
    }
  }

  /**
   * Committed ranges are sent by `sealpost_commit` on this channel, tagged with this instance;
   * while no other instance listens, not at all (the commit is counted until it settles).
   */
  announcement(): Announcement {
    const origin = this.options.instanceId;
    if (!this.#solo) return { channel: CHANNEL, origin, settled: () => {} };
    this.#silent++;
    let settled = false;
    return {
      channel: null,
      origin,
      settled: () => {
        if (settled) return;
        settled = true;
        if (--this.#silent > 0) return;
        for (const resync of this.#silentWaiters.splice(0)) resync();
      },
    };
  }

  /** The notification payload of `wire`, spilled to a table when too large for Postgres. */
  async #payload(db: Kysely<Database>, wire: Wire): Promise<string> {
    const payload = JSON.stringify(wire);
    if (new TextEncoder().encode(payload).length <= MAX_PAYLOAD) return payload;
    const row = await sql<{ id: number }>`
      insert into bus_spill (payload, created_at) values (${payload}, ${Date.now()})
      returning id`.execute(db);
    return JSON.stringify({ o: this.options.instanceId, k: "s", id: row.rows[0].id });
  }

  subscribe(handler: (event: BusEvent) => void): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  onGap(handler: () => void): void {
    this.#gapHandlers.add(handler);
  }

  async close(): Promise<void> {
    clearInterval(this.#soloTimer);
    this.#closed = true;
    await this.#sending;
    this.#handlers.clear();
    this.#gapHandlers.clear();
    await this.#listener.end({ timeout: 1 });
  }
}

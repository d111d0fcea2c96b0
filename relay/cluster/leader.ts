/**
 * @module
 * Leader election for cluster-wide background jobs (sweeper, cleanup, push dispatch, registry
 * pruning): the instance holding a Postgres session advisory lock on a dedicated connection is
 * the leader. When it dies its connection closes, the lock is released, and another instance
 * takes over within one {@link LEADER_POLL_MS}. Embedded PGlite has one instance: it always leads.
 */

import type postgres from "postgres";
import type { Logger } from "../base/log.ts";

/** How often a follower tries to become leader (and a leader checks its connection). */
export const LEADER_POLL_MS = 5_000;
/** The advisory lock key: "sealpost" in ASCII, as an int8. */
const LOCK_KEY = 0x7365616c706f7374n;

/** Who leads the cluster's background jobs. */
export interface Leadership {
  /** True while this instance holds the leadership. */
  isLeader(): boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The single embedded instance always leads. */
export class SoleLeader implements Leadership {
  isLeader(): boolean {
    return true;
  }
  start(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}

/** Leadership by a session advisory lock on a reserved Postgres connection. */
export class AdvisoryLeader implements Leadership {
  #conn: postgres.ReservedSql | null = null;
  #leader = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #busy = false;

  constructor(
    private readonly sql: postgres.Sql,
    private readonly log: Logger,
    private readonly onChange?: (leader: boolean) => void,
  ) {}

  isLeader(): boolean {
    return this.#leader;
  }

  async start(): Promise<void> {
    await this.#tick();
    this.#timer = setInterval(() => this.#tick(), LEADER_POLL_MS);
  }

  async #tick(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      this.#conn ??= await this.sql.reserve();
      if (this.#leader) {
        await this.#conn`select 1`;
        return;
      }
      const [row] = await this
        .#conn`select pg_try_advisory_lock(${LOCK_KEY.toString()}::bigint) as ok`;
      if (row.ok) this.#set(true);
    } catch (error) {
      this.log.warn("leader connection failed", { error });
      this.#set(false);
      try {
        this.#conn?.release();
      } catch { /* gone */ }
      this.#conn = null;
    } finally {
      this.#busy = false;
    }
  }

  #set(leader: boolean): void {
    if (leader === this.#leader) return;
    this.#leader = leader;
    this.log.info(
      leader ? "this instance is now the leader" : "this instance is no longer the leader",
    );
    this.onChange?.(leader);
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#conn) {
      try {
        if (this.#leader) {
          await this.#conn`select pg_advisory_unlock(${LOCK_KEY.toString()}::bigint)`;
        }
      } catch { /* connection gone: the lock went with it */ }
      this.#conn.release();
      this.#conn = null;
    }
    this.#set(false);
  }
}

/**
 * @module
 * Settings admins change at run time (registration mode, default retention), kept in the
 * `settings` table so every instance applies them. The environment gives their initial values;
 * once a value is stored, the stored one wins. Reads come from a cache refreshed every few
 * seconds, so a change made on one instance reaches the others quickly without a query per call.
 */

import type { Clock } from "./clock.ts";
import type { Db } from "./database.ts";

/** Registration modes of PROTOCOL.md. */
export type RegistrationMode = "open" | "invite" | "closed";

/** The run-time settings and their types. */
export type RuntimeValues = {
  registration: RegistrationMode;
  /** Default group retention in seconds (0 = forever, only when max TTL is forever). */
  retention_s: number;
};

const REFRESH_MS = 3000;

/** Reads and changes run-time settings; every change is written to the audit log. */
export class RuntimeSettings {
  #cache: RuntimeValues;
  #loadedAt = -Infinity;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly initial: RuntimeValues,
  ) {
    this.#cache = { ...initial };
  }

  /** The current values, reloaded from the database when the cache is a few seconds old. */
  async get(): Promise<RuntimeValues> {
    if (this.clock.now() - this.#loadedAt > REFRESH_MS || this.#loadedAt > this.clock.now()) {
      await this.reload();
    }
    return this.#cache;
  }

  /** Reloads from the database now. */
  async reload(): Promise<RuntimeValues> {
    const rows = await this.db.selectFrom("settings").select(["key", "value"]).execute();
    const next: Record<string, unknown> = { ...this.initial };
    for (const row of rows) {
      if (row.key in this.initial) next[row.key] = JSON.parse(row.value);
    }
    this.#cache = next as RuntimeValues;
    this.#loadedAt = this.clock.now();
    return this.#cache;
  }

  /** Stores a value and records who changed it, from what, to what. */
  async set<K extends keyof RuntimeValues>(
    key: K,
    value: RuntimeValues[K],
    actor: string,
  ): Promise<void> {
    const before = (await this.reload())[key];
    const now = this.clock.now();
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto("settings")
        .values({ key, value: JSON.stringify(value), updated_at: now })
        .onConflict((oc) =>
          oc.column("key").doUpdateSet({ value: JSON.stringify(value), updated_at: now })
        )
        .execute();
      await tx.insertInto("audit_log").values({
        at: now,
        actor,
        action: `setting.${key}`,
        detail: JSON.stringify({ before, after: value }),
      }).execute();
    });
    await this.reload();
  }
}

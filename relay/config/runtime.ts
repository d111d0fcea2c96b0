/**
 * @module
 * Settings admins change at run time (registration mode, default retention, inactivity
 * thresholds, rate limits), kept in the `settings` table so every instance applies them. The
 * environment gives their initial values; once a value is stored, the stored one wins. Reads come
 * from a cache refreshed every few seconds, so a change made on one instance reaches the others
 * quickly without a query per call; parts that need a value synchronously (rate limiters) read
 * {@link RuntimeSettings.current} and hear of changes through {@link RuntimeSettings.onChange}.
 */

import type { Clock } from "../base/clock.ts";
import { type Config, parseDuration, parseRate, type Rate } from "./config.ts";
import type { Db } from "../store/database.ts";
import { recordAudit } from "../store/audit.ts";
import { invalid } from "../errors.ts";

/** Registration modes of PROTOCOL.md. */
export type RegistrationMode = "open" | "invite" | "closed";

/** The run-time settings and their types. */
export type RuntimeValues = {
  registration: RegistrationMode;
  /** Default group retention in seconds (0 = forever, only when max TTL is forever). */
  retention_s: number;
  /** A device with no activity this long is inactive (seconds). */
  inactive_after_s: number;
  /** A device with no activity this long is deleted by cleanup (seconds). */
  delete_after_s: number;
  /** Rate limits as written in the configuration: `100/min`, `5/s`, `off`. */
  rate_send: string;
  rate_poll: string;
  rate_auth: string;
  rate_claim: string;
};

/** The names of the run-time settings. */
export type RuntimeKey = keyof RuntimeValues;

const REFRESH_MS = 3000;

/** Writes a parsed rate back in the configuration's notation (`100/min`, `off`). */
export function formatRate(rate: Rate): string {
  if (rate === null) return "off";
  const units: [number, string][] = [[3_600_000, "h"], [60_000, "min"], [1000, "s"]];
  for (const [ms, unit] of units) {
    if (rate.perMs === ms) return `${rate.count}/${unit}`;
  }
  return `${Math.round(rate.count * 60_000 / rate.perMs)}/min`;
}

/** Writes seconds as the largest whole duration unit: `90d`, `36h`, `15m`, `45s`. */
export function formatDurationS(seconds: number): string {
  for (const [s, unit] of [[86_400, "d"], [3_600, "h"], [60, "m"]] as const) {
    if (seconds >= s && seconds % s === 0) return `${seconds / s}${unit}`;
  }
  return `${seconds}s`;
}

/** The initial run-time values from the configuration. */
export function initialRuntimeValues(config: Config): RuntimeValues {
  return {
    registration: config.registration,
    retention_s: Math.floor(config.retention / 1000),
    inactive_after_s: Math.floor(config.inactiveAfter / 1000),
    delete_after_s: Math.floor(config.deleteAfter / 1000),
    rate_send: formatRate(config.rateSend),
    rate_poll: formatRate(config.ratePoll),
    rate_auth: formatRate(config.rateAuth),
    rate_claim: formatRate(config.rateClaim),
  };
}

function durationS(text: string, what: string, allowZero = false): number {
  try {
    if (allowZero && text.trim() === "0") return 0;
    const seconds = Math.floor(parseDuration(text) / 1000);
    if (seconds < 1) throw new Error("expected at least 1s");
    return seconds;
  } catch (error) {
    throw invalid(`Cannot parse ${what}: ${(error as Error).message}, got '${text}'`);
  }
}

function rateText(text: string, what: string): string {
  try {
    return formatRate(parseRate(text));
  } catch (error) {
    throw invalid(`Cannot parse ${what}: ${(error as Error).message}, got '${text}'`);
  }
}

/**
 * Parses a setting as an admin types it (`invite`, `30d`, `100/min`) into its stored value, or
 * throws `400 invalid_request` naming the setting.
 *
 * @example
 * ```ts
 * parseRuntimeValue("retention_s", "7d"); // 604800
 * ```
 */
export function parseRuntimeValue<K extends RuntimeKey>(key: K, text: string): RuntimeValues[K] {
  const value = text.trim();
  switch (key) {
    case "registration":
      if (!["open", "invite", "closed"].includes(value)) {
        throw invalid(`Cannot parse registration: expected open, invite or closed, got '${text}'`);
      }
      return value as RuntimeValues[K];
    case "retention_s":
      return durationS(value, "retention", true) as RuntimeValues[K];
    case "inactive_after_s":
    case "delete_after_s":
      return durationS(value, key.replace("_s", "").replaceAll("_", " ")) as RuntimeValues[K];
    default:
      return rateText(value, key.replace("_", " ")) as RuntimeValues[K];
  }
}

/** Refuses a combination of values that cannot work together. */
export function checkRuntimeValues(values: RuntimeValues): void {
  if (values.delete_after_s <= values.inactive_after_s) {
    throw invalid("Cannot use these thresholds: delete after must be longer than inactive after");
  }
}

/** Reads and changes run-time settings; every change is written to the audit log. */
export class RuntimeSettings {
  #cache: RuntimeValues;
  #loadedAt = -Infinity;
  #listeners = new Set<(values: RuntimeValues) => void>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly initial: RuntimeValues,
  ) {
    this.#cache = { ...initial };
  }

  /** The values as last loaded: for callers that cannot wait (rate limiters). */
  get current(): RuntimeValues {
    return this.#cache;
  }

  /** Calls `listener` after every reload that changed a value; returns the unsubscribe. */
  onChange(listener: (values: RuntimeValues) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Reloads every few seconds (real time), so changes made elsewhere apply here. */
  start(onError: (error: unknown) => void = () => {}): void {
    if (this.#timer !== undefined) return;
    this.reload().catch(onError);
    this.#timer = setInterval(() => this.reload().catch(onError), REFRESH_MS);
  }

  /** Stops the periodic reload. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
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
    const before = this.#cache;
    this.#cache = next as RuntimeValues;
    this.#loadedAt = this.clock.now();
    const changed = (Object.keys(next) as RuntimeKey[]).some((k) => before[k] !== next[k]);
    if (changed) {
      for (const listener of this.#listeners) listener(this.#cache);
    }
    return this.#cache;
  }

  /** Stores a value and records who changed it, from what, to what. */
  async set<K extends keyof RuntimeValues>(
    key: K,
    value: RuntimeValues[K],
    actor: string,
  ): Promise<void> {
    await this.update({ [key]: value } as Partial<RuntimeValues>, actor);
  }

  /**
   * Stores several values at once (checked together), with one audit entry per changed value.
   * Returns the keys that changed.
   */
  async update(changes: Partial<RuntimeValues>, actor: string): Promise<RuntimeKey[]> {
    const current = await this.reload();
    const next = { ...current, ...changes };
    checkRuntimeValues(next);
    const changed = (Object.keys(changes) as RuntimeKey[])
      .filter((key) => key in this.initial && current[key] !== next[key]);
    if (changed.length === 0) return [];
    const now = this.clock.now();
    await this.db.transaction().execute(async (tx) => {
      for (const key of changed) {
        const value = JSON.stringify(next[key]);
        await tx.insertInto("settings")
          .values({ key, value, updated_at: now })
          .onConflict((oc) => oc.column("key").doUpdateSet({ value, updated_at: now }))
          .execute();
        await recordAudit(
          { db: tx, clock: this.clock },
          actor,
          `setting.${key}`,
          { before: current[key], after: next[key] },
          now,
        );
      }
    });
    await this.reload();
    return changed;
  }
}

/**
 * @module
 * Scheduled backups for homelab installs: every `SEALPOST_BACKUP_INTERVAL` the leader writes an
 * archive (the same format as `sealpost backup`) into `SEALPOST_BACKUP_DIR` and keeps the newest
 * `SEALPOST_BACKUP_KEEP`. An archive appears under its final name only when complete. On the
 * embedded database the snapshot transaction briefly holds the single connection, so sends wait
 * for it: keep the interval at hours, not minutes, for large installs.
 */

import type { BlobStore } from "../blobs/mod.ts";
import type { Clock } from "../base/clock.ts";
import type { Db } from "../store/database.ts";
import { exportArchive } from "../archive/export.ts";
import type { Logger } from "../base/log.ts";
import type { Metrics } from "../base/metrics.ts";

/** Options of the scheduler. */
export type BackupScheduleOptions = {
  db: Db;
  dbKind: string;
  blobs: BlobStore;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  dir: string;
  intervalMs: number;
  keep: number;
  isLeader: () => boolean;
};

const PREFIX = "sealpost-";
const SUFFIX = ".sealpost";

/** The file name of a backup taken at `time`: sortable, UTC. */
export function backupName(time: number): string {
  const iso = new Date(time).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${PREFIX}${iso}${SUFFIX}`;
}

/** Writes backups on a timer while this instance leads. */
export class BackupSchedule {
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | null = null;
  #lastSuccess = 0;

  constructor(private readonly options: BackupScheduleOptions) {
    options.metrics.gauge(
      "sealpost_backup_last_success_timestamp_seconds",
      "When the last scheduled backup completed (0: never since start).",
      () => this.#lastSuccess / 1000,
    );
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      if (!this.options.isLeader() || this.#running) return;
      this.#running = this.runOnce().then(() => {}, () => {}).finally(() => this.#running = null);
    }, this.options.intervalMs);
  }

  /** Takes one backup now and prunes old ones; returns the file written. */
  async runOnce(): Promise<string> {
    const { dir, log, metrics, clock } = this.options;
    const started = performance.now();
    await Deno.mkdir(dir, { recursive: true });
    const file = `${dir}/${backupName(clock.now())}`;
    const temp = `${file}.partial`;
    try {
      const out = await Deno.open(temp, { write: true, create: true, truncate: true });
      const trailer = await exportArchive({
        db: this.options.db,
        dbKind: this.options.dbKind,
        blobs: this.options.blobs,
        out: out.writable,
        now: clock.now(),
        quiet: true,
        includeBlobs: this.options.blobs.kind === "fs",
      });
      await Deno.rename(temp, file);
      this.#lastSuccess = Date.now();
      metrics.backups.inc({ result: "ok" });
      log.info("backup written", {
        file,
        rows: Object.values(trailer.counts).reduce((a, b) => a + b, 0),
        blobs: trailer.blobs,
        ms: Math.round(performance.now() - started),
      });
      await this.prune();
      return file;
    } catch (error) {
      metrics.backups.inc({ result: "error" });
      log.error("backup failed", { error, file });
      await Deno.remove(temp).catch(() => {});
      throw error;
    }
  }

  /** Deletes all but the newest `keep` backups in the directory. */
  async prune(): Promise<string[]> {
    const names: string[] = [];
    for await (const entry of Deno.readDir(this.options.dir)) {
      if (entry.isFile && entry.name.startsWith(PREFIX) && entry.name.endsWith(SUFFIX)) {
        names.push(entry.name);
      }
    }
    names.sort();
    const gone = names.slice(0, Math.max(0, names.length - this.options.keep));
    for (const name of gone) await Deno.remove(`${this.options.dir}/${name}`).catch(() => {});
    return gone;
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}

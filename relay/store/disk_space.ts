/**
 * @module
 * The free-space reserve of the data directory (`SEALPOST_DISK_RESERVE`). A full disk must be an
 * answer, not a hang: embedded PGlite that fails a WAL write on a full disk cannot commit again
 * in that process (its next commit spins in `XLogFlush`; see `commands/watchdog.ts`), so the
 * relay stops taking the writes that grow the disk — sends and blob uploads — while free space is
 * below the reserve, answering `503 unavailable` with `retry_after_ms`, and takes them again by
 * itself once space returns. Free space comes from `statfs(2)` (`node:fs` `statfsSync`: one
 * system call, no process spawned), read at most once a second whatever the traffic.
 */

import { statfsSync } from "node:fs";
import type { DiskReserve } from "../config/values.ts";
import { DISK_RETRY_MS, RelayError } from "../errors.ts";
import type { Logger } from "../base/log.ts";
import type { Metrics } from "../base/metrics.ts";

/** How long one `statfs` reading is reused. */
const CHECK_EVERY_MS = 1_000;

/** One reading of the data directory's file system. */
export type DiskStatus = {
  /** Bytes an unprivileged process may still write. */
  free: number;
  /** The file system's size in bytes. */
  size: number;
  /** The reserve in bytes for this file system. */
  reserve: number;
  /** True when free space is below the reserve. */
  low: boolean;
  /** Why the relay refuses writes, for `/readyz`, logs and the admin; null when not low. */
  reason: string | null;
};

/** Reads free space, for tests that fake a file system. */
export type StatFs = (path: string) => { bavail: number; blocks: number; bsize: number };

const MIB = 1024 * 1024;

function mib(bytes: number): string {
  return `${Math.floor(bytes / MIB)} MiB`;
}

/**
 * Watches the free space of one directory against a reserve.
 *
 * @example
 * ```ts
 * const disk = new DiskSpace("./data", { bytes: 64 * 1024 * 1024 });
 * disk.assertRoom(); // throws RelayError("unavailable") below the reserve
 * ```
 */
export class DiskSpace {
  #last: DiskStatus | null = null;
  #checkedAt = -Infinity;
  #onChange: ((status: DiskStatus) => void) | null = null;

  constructor(
    readonly dir: string,
    readonly reserve: DiskReserve,
    private readonly statfs: StatFs = (path) => statfsSync(path),
  ) {}

  /** True when a reserve is set (a reserve of 0 turns the check off). */
  get enabled(): boolean {
    return "bytes" in this.reserve ? this.reserve.bytes > 0 : this.reserve.percent > 0;
  }

  /** Called when the directory goes below or back above the reserve (for the log). */
  onChange(fn: (status: DiskStatus) => void): void {
    this.#onChange = fn;
  }

  /** The current reading (at most a second old); null when off or the directory is unreadable. */
  status(): DiskStatus | null {
    if (!this.enabled) return null;
    const now = performance.now();
    if (now - this.#checkedAt < CHECK_EVERY_MS) return this.#last;
    this.#checkedAt = now;
    return this.refresh();
  }

  /** Reads the file system now. */
  refresh(): DiskStatus | null {
    if (!this.enabled) return null;
    let stats;
    try {
      stats = this.statfs(this.dir);
    } catch {
      // A missing directory has nothing to protect yet; the database opening it reports why.
      return this.#last = null;
    }
    const free = Number(stats.bavail) * Number(stats.bsize);
    const size = Number(stats.blocks) * Number(stats.bsize);
    const reserve = "bytes" in this.reserve
      ? this.reserve.bytes
      : Math.ceil(size * this.reserve.percent / 100);
    const low = free < reserve;
    const status: DiskStatus = {
      free,
      size,
      reserve,
      low,
      reason: low
        ? `disk nearly full: ${mib(free)} free in ${this.dir}, below the reserve of ${
          mib(reserve)
        } (SEALPOST_DISK_RESERVE); sends and blob uploads are refused until space returns`
        : null,
    };
    const changed = (this.#last?.low ?? false) !== low;
    this.#last = status;
    if (changed) this.#onChange?.(status);
    return status;
  }

  /** Throws `503 unavailable` with `retry_after_ms` while free space is below the reserve. */
  assertRoom(): void {
    const status = this.status();
    if (status?.low) {
      throw new RelayError(
        "unavailable",
        "The relay's disk is nearly full; retry later",
        DISK_RETRY_MS,
      );
    }
  }
}

/**
 * The reserve of `config.dataDir` when it holds what grows with traffic — the embedded database
 * or blob files — with a `sealpost_data_dir_free_bytes` gauge and a log line each time the
 * directory goes below the reserve or back above it; undefined with server Postgres and S3.
 */
export function watchDataDir(
  config: { dataDir: string; diskReserve: DiskReserve },
  dbKind: "pglite" | "postgres",
  blobKind: "fs" | "s3",
  parts: { log: Logger; metrics: Metrics },
): DiskSpace | undefined {
  if (dbKind !== "pglite" && blobKind !== "fs") return undefined;
  const disk = new DiskSpace(config.dataDir, config.diskReserve);
  if (!disk.enabled) return undefined;
  disk.onChange((status) => {
    if (status.low) parts.log.error("disk nearly full: refusing sends and blob uploads", status);
    else parts.log.info("disk space returned: taking sends and blob uploads again", status);
  });
  parts.metrics.gauge(
    "sealpost_data_dir_free_bytes",
    "Free bytes in the data directory's file system (sends refused below SEALPOST_DISK_RESERVE).",
    () => disk.status()?.free ?? 0,
  );
  return disk;
}

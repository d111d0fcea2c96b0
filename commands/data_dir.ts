/**
 * @module
 * How a one-shot command treats an embedded data directory another process owns: it takes the
 * directory's lock for as long as it runs (so `serve` cannot start under it), or, when a relay
 * holds it, it refuses with one line that names the holder and what to do instead. `backup` and
 * `export` are the exception: they go through the running relay's control socket
 * (`commands/control.ts`). With `DATABASE_URL` set nothing is locked: server Postgres takes any
 * number of clients.
 */

import type { Config } from "../relay/config/config.ts";
import {
  type DataDirLock,
  DataDirLockedError,
  lockDataDir,
  type LockHolder,
} from "../relay/store/data_dir_lock.ts";

/** A command refused because the data directory is in use; printed as one line, exit 1. */
export class DataDirBusyError extends Error {
  override name = "DataDirBusyError";
}

/** What to do instead, per command. */
const INSTEAD: Record<string, string> = {
  admin: "use the dashboard (/admin) or stop the relay first",
  import: "stop the relay first; restore into an empty data directory",
  restore: "stop the relay first; restore into an empty data directory",
  migrate: "the running relay applied every migration when it started",
  sweep: "the running relay sweeps by itself every SEALPOST_SWEEP_INTERVAL",
  serve: "stop it first, or give this relay its own --data-dir",
};

/** The one line for `command` refused on a directory `holder` owns. */
export function busyMessage(command: string, dir: string, holder: LockHolder): string {
  const who = holder.pid === null
    ? "another sealpost process"
    : `sealpost ${holder.command} (pid ${holder.pid})`;
  const instead = INSTEAD[command] ?? "stop it first";
  return `Cannot run 'sealpost ${command}': the data directory ${dir} is in use by ${who}; ${instead}`;
}

/** The outcome of claiming: the lock, or (for a live relay) where its control socket is. */
export type Claim =
  | { kind: "locked"; lock: DataDirLock }
  | { kind: "server" }
  | { kind: "live"; holder: LockHolder & { control: string } };

/**
 * Claims the data directory for `command`. With `viaRelay`, a directory held by a relay that
 * serves a control socket answers `live` (the command talks to it); otherwise a held directory
 * throws {@link DataDirBusyError}.
 */
export async function claimDataDir(
  config: Pick<Config, "databaseUrl" | "dataDir">,
  command: string,
  options: { viaRelay?: boolean } = {},
): Promise<Claim> {
  if (config.databaseUrl) return { kind: "server" };
  try {
    return { kind: "locked", lock: await lockDataDir(config.dataDir, command) };
  } catch (error) {
    if (!(error instanceof DataDirLockedError)) throw error;
    const { holder } = error;
    if (options.viaRelay && holder.command === "serve" && holder.control) {
      return { kind: "live", holder: { ...holder, control: holder.control } };
    }
    if (options.viaRelay && holder.command === "serve") {
      throw new DataDirBusyError(
        `${
          busyMessage(command, config.dataDir, holder).replace(/; [^;]*$/, "")
        }, which serves no control socket (see its log); stop it first`,
      );
    }
    throw new DataDirBusyError(busyMessage(command, config.dataDir, holder));
  }
}

/**
 * @module
 * One owner per embedded data directory. PGlite is Postgres in one process: two processes on one
 * `$SEALPOST_DATA_DIR/pg` silently diverge (a backup that sees 3 rows of 16, an admin command
 * whose write the relay never sees). `serve` and every command that opens the embedded database
 * take an exclusive advisory lock (`flock`, through `Deno.FsFile.tryLock(true)`) on
 * `$SEALPOST_DATA_DIR/sealpost.lock` and keep it until they exit; the kernel releases it when the
 * process ends, even by `kill -9`, so a crash never leaves a stale lock behind. The file also
 * records who holds it (pid and command), for the one line a refused command prints.
 */

/** The lock file's name inside the data directory. */
export const LOCK_FILE = "sealpost.lock";

/** Who holds a data directory, as written into the lock file by its holder. */
export type LockHolder = { pid: number | null; command: string; control: string | null };

/** A held lock; released by `release()` or when the process ends. */
export interface DataDirLock {
  readonly path: string;
  /** Records that the holder serves a control socket at `socket` (see `commands/control.ts`). */
  announce(socket: string | null): Promise<void>;
  release(): void;
}

/** The data directory is held by another process. */
export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
  constructor(readonly dir: string, readonly holder: LockHolder) {
    super(
      `The data directory ${dir} is in use by ${
        holder.pid === null
          ? "another sealpost process"
          : `sealpost ${holder.command} (pid ${holder.pid})`
      }`,
    );
  }
}

/** Reads who holds the lock; tolerant of a file being written right now. */
export async function readHolder(dir: string): Promise<LockHolder> {
  try {
    const parsed = JSON.parse(await Deno.readTextFile(`${dir}/${LOCK_FILE}`));
    return {
      pid: typeof parsed.pid === "number" ? parsed.pid : null,
      command: typeof parsed.command === "string" ? parsed.command : "?",
      control: typeof parsed.control === "string" ? parsed.control : null,
    };
  } catch {
    return { pid: null, command: "?", control: null };
  }
}

/**
 * Takes the data directory's lock for `command` without waiting: the lock, or
 * {@link DataDirLockedError} naming the holder. Creates the directory if missing.
 *
 * @example
 * ```ts
 * const lock = await lockDataDir("./data", "serve");
 * // … the process owns ./data until lock.release() or exit
 * ```
 */
export async function lockDataDir(dir: string, command: string): Promise<DataDirLock> {
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/${LOCK_FILE}`;
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  if (!(await file.tryLock(true))) {
    file.close();
    throw new DataDirLockedError(dir, await readHolder(dir));
  }
  const write = async (control: string | null) => {
    const text = JSON.stringify({ pid: Deno.pid, command, control, since: Date.now() }) + "\n";
    await file.truncate(0);
    await file.seek(0, Deno.SeekMode.Start);
    await file.write(new TextEncoder().encode(text));
  };
  await write(null);
  let released = false;
  return {
    path,
    announce: (socket) => write(socket),
    release: () => {
      if (released) return;
      released = true;
      try {
        file.unlockSync();
      } finally {
        file.close();
      }
    },
  };
}

/**
 * @module
 * The CLI side of archives: `export`/`backup <file>` and `import`/`restore <file>`, with the
 * configuration naming the database and blob store on each side. Export writes to a temporary
 * file and renames it when complete, so a half-written archive never carries the final name.
 * On an embedded data directory a running relay owns, `backup`/`export` ask that relay for the
 * archive through its control socket (`control.ts`); `import`/`restore` refuse.
 */

import { openBlobStore } from "../relay/blobs/open.ts";
import type { Config } from "../relay/config/config.ts";
import { exportArchive } from "../relay/archive/export.ts";
import { importArchive } from "../relay/archive/import.ts";
import { assertNotNewer, migrate } from "../relay/store/migrate.ts";
import { backupThroughRelay } from "./control.ts";
import { claimDataDir } from "./data_dir.ts";
import { withDatabase } from "./open.ts";

async function assertNew(file: string): Promise<void> {
  try {
    await Deno.lstat(file);
    throw new Error(`Cannot write ${file}: it exists (choose a new file name)`);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Runs an archive command; returns the lines to print. */
export async function archiveCommand(
  command: "export" | "backup" | "import" | "restore",
  config: Config,
  file: string,
  print: (line: string) => void,
  options: { quiet?: boolean; now?: number } = {},
): Promise<void> {
  const writing = command === "export" || command === "backup";
  const claim = await claimDataDir(config, command, { viaRelay: writing });
  if (claim.kind === "live") {
    await assertNew(file);
    const socket = `${config.dataDir}/${claim.holder.control}`;
    // The embedded store is always fs, so a backup takes the blobs too.
    const summary = await backupThroughRelay(socket, file, true);
    print(
      `Wrote ${file} through the running relay (pid ${claim.holder.pid}): ${summary.rows} rows in ${summary.tables} tables, ${summary.blobs} blobs (${summary.blob_bytes} bytes)`,
    );
    if (summary.missing_blobs > 0) {
      print(
        `Note: ${summary.missing_blobs} blobs were gone from the store (purged while exporting)`,
      );
    }
    return;
  }
  const blobs = openBlobStore(config);
  await withDatabase(config, command, async (database) => {
    if (writing) {
      await assertNotNewer(database.db);
      await assertNew(file);
      const temp = `${file}.partial-${crypto.randomUUID().slice(0, 8)}`;
      const out = await Deno.open(temp, { write: true, createNew: true });
      try {
        const trailer = await exportArchive({
          db: database.db,
          dbKind: database.kind,
          blobs,
          out: out.writable,
          now: options.now ?? Date.now(),
          quiet: options.quiet,
          // A backup of an S3 install is the database only; the bucket keeps the blobs.
          includeBlobs: command === "export" || blobs.kind === "fs",
        });
        await Deno.rename(temp, file);
        const rows = Object.values(trailer.counts).reduce((a, b) => a + b, 0);
        if (command === "backup" && blobs.kind !== "fs") {
          print(`Blobs stay in ${blobs.location}; this backup holds the database only`);
        }
        print(
          `Wrote ${file}: ${rows} rows in ${
            Object.keys(trailer.counts).length
          } tables, ${trailer.blobs} blobs (${trailer.blob_bytes} bytes)`,
        );
        if (trailer.missing_blobs.length > 0) {
          print(
            `Note: ${trailer.missing_blobs.length} blobs were gone from the store (purged while exporting)`,
          );
        }
      } catch (error) {
        await Deno.remove(temp).catch(() => {});
        throw error;
      }
      return;
    }
    await migrate(database.db);
    const input = await Deno.open(file, { read: true });
    const report = await importArchive({
      db: database.db,
      blobs,
      input: input.readable,
      quiet: options.quiet,
    });
    const rows = Object.values(report.counts).reduce((a, b) => a + b, 0);
    print(
      `Imported ${file} into ${database.kind} (${database.location}) and ${blobs.kind} blobs: ${rows} rows, ${report.blobs} blobs (${report.blob_bytes} bytes); verified counts and hashes`,
    );
  }, claim);
}

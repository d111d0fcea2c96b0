/**
 * @module
 * The local control socket of an embedded relay, and the CLI side that uses it. `serve` on the
 * embedded database owns its data directory (see `relay/store/data_dir_lock.ts`), so a command
 * that needs the database while it runs cannot open a second PGlite there. Instead the relay
 * listens on a Unix socket, `$SEALPOST_DATA_DIR/control/relay.sock`, inside a directory only its
 * owner can enter (mode 0700; root can too), and does the work itself: `backup`/`export` ask it
 * for an archive, which it writes from its own consistent snapshot into a temporary file beside
 * the database, then streams to the command with its exact length; the command writes the file
 * under a temporary name and renames it only when every byte arrived. The temporary file is
 * unlinked as soon as it is opened for streaming, so a crash leaves nothing behind.
 */

import { exportArchive } from "../relay/archive/export.ts";
import type { BlobStore } from "../relay/blobs/mod.ts";
import type { Logger } from "../relay/base/log.ts";
import type { Db } from "../relay/store/database.ts";

/** The socket's path relative to the data directory. */
export const CONTROL_SOCKET = "control/relay.sock";

/** What the control socket answers with. */
export type ControlDeps = {
  dataDir: string;
  db: Db;
  dbKind: string;
  blobs: BlobStore;
  log: Logger;
};

/** What a control backup reports beside the bytes (the `x-sealpost-archive` header). */
export type ArchiveSummary = {
  rows: number;
  tables: number;
  blobs: number;
  blob_bytes: number;
  missing_blobs: number;
};

/** A listening control socket. */
export type ControlServer = { readonly path: string; close(): Promise<void> };

/**
 * Listens on the data directory's control socket. Returns null (after a warning) when the socket
 * cannot be created, e.g. a data directory path past the Unix socket limit of 107 bytes: live
 * backups then refuse with one line instead of working.
 */
export async function serveControl(deps: ControlDeps): Promise<ControlServer | null> {
  const dir = `${deps.dataDir}/control`;
  const path = `${deps.dataDir}/${CONTROL_SOCKET}`;
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.chmod(dir, 0o700);
    // The lock proves no other relay serves here: a socket file left by a killed one is stale.
    await Deno.remove(path).catch(() => {});
    const server = Deno.serve(
      { path, onListen: () => {} },
      (request) => handle(deps, request),
    );
    await Deno.chmod(path, 0o600);
    return {
      path,
      close: async () => {
        await server.shutdown();
        await Deno.remove(path).catch(() => {});
      },
    };
  } catch (error) {
    deps.log.warn("control socket unavailable: backups of this live relay will refuse", {
      path,
      error,
    });
    return null;
  }
}

async function handle(deps: ControlDeps, request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (request.method === "POST" && url.pathname === "/backup") {
    try {
      return await backupResponse(deps, url.searchParams.get("blobs") === "1");
    } catch (error) {
      deps.log.error("backup through the control socket failed", { error });
      return Response.json({ error: (error as Error).message }, { status: 500 });
    }
  }
  return Response.json({ error: "unknown control request" }, { status: 404 });
}

async function backupResponse(deps: ControlDeps, includeBlobs: boolean): Promise<Response> {
  const temp = `${deps.dataDir}/control/backup-${crypto.randomUUID()}.partial`;
  let summary: ArchiveSummary;
  try {
    const out = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
    const trailer = await exportArchive({
      db: deps.db,
      dbKind: deps.dbKind,
      blobs: deps.blobs,
      out: out.writable,
      now: Date.now(),
      quiet: true,
      includeBlobs,
    });
    summary = {
      rows: Object.values(trailer.counts).reduce((a, b) => a + b, 0),
      tables: Object.keys(trailer.counts).length,
      blobs: trailer.blobs,
      blob_bytes: trailer.blob_bytes,
      missing_blobs: trailer.missing_blobs.length,
    };
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  const file = await Deno.open(temp, { read: true });
  const size = (await file.stat()).size;
  await Deno.remove(temp);
  deps.log.info("backup streamed through the control socket", { ...summary, bytes: size });
  return new Response(file.readable, {
    headers: {
      "content-type": "application/octet-stream",
      "content-length": String(size),
      "x-sealpost-archive": JSON.stringify(summary),
    },
  });
}

/**
 * Asks the relay serving `socket` for an archive and writes it to `file` (a temporary name
 * first, renamed when all bytes arrived). Throws with one line when the relay cannot.
 */
export async function backupThroughRelay(
  socket: string,
  file: string,
  includeBlobs: boolean,
): Promise<ArchiveSummary> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  const temp = `${file}.partial-${crypto.randomUUID().slice(0, 8)}`;
  try {
    let response: Response;
    try {
      response = await fetch(`http://relay/backup?blobs=${includeBlobs ? 1 : 0}`, {
        method: "POST",
        client,
      });
    } catch (error) {
      throw new Error(
        `Cannot reach the running relay's control socket ${socket}: ${(error as Error).message}`,
      );
    }
    if (response.status !== 200) {
      const body = await response.json().catch(() => ({}));
      throw new Error(
        `The running relay could not write the backup: ${body.error ?? response.status}`,
      );
    }
    const expected = Number(response.headers.get("content-length"));
    const summary = JSON.parse(response.headers.get("x-sealpost-archive") ?? "null");
    if (!Number.isSafeInteger(expected) || !summary) {
      await response.body?.cancel();
      throw new Error("The running relay answered the backup without its length or summary");
    }
    const out = await Deno.open(temp, { write: true, createNew: true });
    let received = 0;
    try {
      await response.body!.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            received += chunk.length;
            controller.enqueue(chunk);
          },
        }),
      ).pipeTo(out.writable);
    } catch (error) {
      throw new Error(`The backup stream broke off: ${(error as Error).message}`);
    }
    if (received !== expected) {
      throw new Error(`The backup stream broke off after ${received} of ${expected} bytes`);
    }
    await Deno.rename(temp, file);
    return summary as ArchiveSummary;
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  } finally {
    client.close();
  }
}

/**
 * @module
 * The embedded database's own thread: a `Worker` that opens PGlite on the data directory and runs
 * the statements the relay posts to it (`pglite_client.ts` is the relay's side). PGlite runs
 * Postgres synchronously on the thread that calls it; here that is this worker, so the relay's
 * event loop keeps its sockets and timers while Postgres works on the second core. PGlite has one
 * connection: statements run one at a time in arrival order, and while a transaction is open
 * (`begin` with a transaction id) only statements tagged with that id run — everyone else's wait
 * in the queue until its `commit` or `rollback`. After the first disk-full error (`53100`, or
 * `ENOSPC` from the file system) the worker fences itself: every later statement fails at once
 * with `53100`, because PGlite's next commit after a failed WAL write spins in `XLogFlush` for
 * ever, and a fenced instance is never closed (closing checkpoints, which spins the same way).
 * This module does nothing unless it is the entry of a worker named {@link PGLITE_WORKER_NAME}
 * (in the bundled artifact the whole bundle is that entry; see `main.ts`).
 */

/** The worker's name; the module starts serving only in a worker of this name. */
export const PGLITE_WORKER_NAME = "sealpost-pglite";

/** A statement or command for the worker. `tx` 0 is outside any transaction. */
export type PgliteRequest =
  | { id: number; op: "open"; dir: string }
  | { id: number; op: "query"; sql: string; params: readonly unknown[]; tx: number }
  | { id: number; op: "begin" | "commit" | "rollback"; tx: number }
  | { id: number; op: "close" };

/** A Postgres error as fields that survive `postMessage` (`code`, `detail`, `constraint`, ...). */
export type PgliteErrorFields = { message: string; name: string; [field: string]: unknown };

/** The worker's answer to one request. */
export type PgliteReply =
  | { id: number; ok: true; rows?: unknown[]; affected?: number }
  | { id: number; ok: false; error: PgliteErrorFields; fenced?: string };

/** Why a fenced embedded database refuses every statement. */
export const FENCED =
  "the embedded database hit a full disk and cannot commit again in this process: free space and restart the relay";

const INT8_OID = 20;

/** True in the worker thread that should serve the embedded database. */
export function isPgliteWorker(): boolean {
  return (globalThis as { name?: unknown }).name === PGLITE_WORKER_NAME &&
    typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined";
}

/** An error's fields, without what would be large or uncloneable (parameters, options). */
function errorFields(error: unknown): PgliteErrorFields {
  const fields: PgliteErrorFields = {
    message: error instanceof Error ? error.message : String(error),
    name: error instanceof Error ? error.name : "Error",
  };
  if (error && typeof error === "object") {
    for (const [key, value] of Object.entries(error)) {
      if (key === "params" || key === "queryOptions" || key === "query") continue;
      if (value === undefined || value === null || typeof value === "object") continue;
      if (typeof value === "function") continue;
      fields[key] = value;
    }
  }
  return fields;
}

function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  return code === "53100" || code === "ENOSPC" || /No space left on device/i.test(String(error));
}

// deno-lint-ignore no-explicit-any
type Pg = any;

/** Serves one PGlite to the thread that started this worker. */
function serveWorker(): void {
  const post = (reply: PgliteReply) => (globalThis as unknown as Worker).postMessage(reply);
  const queue: PgliteRequest[] = [];
  let pg: Pg = null;
  let active = 0;
  let running = false;
  let fenced: string | null = null;

  const next = (): PgliteRequest | undefined => {
    if (active === 0) return queue.shift();
    const at = queue.findIndex((r) => "tx" in r && r.tx === active);
    return at < 0 ? undefined : queue.splice(at, 1)[0];
  };

  const run = async (request: PgliteRequest): Promise<PgliteReply> => {
    const { id } = request;
    if (request.op === "open") {
      const { PGlite } = await import("@electric-sql/pglite");
      const { pgliteAssets } = await import("./pglite_assets.ts");
      await Deno.mkdir(request.dir, { recursive: true });
      pg = await PGlite.create({
        dataDir: request.dir,
        ...await pgliteAssets(),
        parsers: { [INT8_OID]: (value: string) => Number(value) },
      });
      return { id, ok: true };
    }
    if (request.op === "close") {
      // A fenced instance is left alone: its checkpoint would spin (see the module doc).
      if (pg && !fenced && !pg.closed) await pg.close();
      return { id, ok: true };
    }
    // A transaction's end frees the connection even when it fails (fenced, or no PGlite): else
    // everyone else's statements would wait in the queue for ever.
    if (request.op === "commit" || request.op === "rollback") active = 0;
    if (fenced) throw Object.assign(new Error(FENCED), { code: "53100" });
    if (!pg) throw Object.assign(new Error("the embedded database is not open"), { code: "57P03" });
    switch (request.op) {
      case "begin":
        await pg.query("begin");
        active = request.tx;
        return { id, ok: true };
      case "commit":
      case "rollback":
        await pg.query(request.op);
        return { id, ok: true };
      case "query": {
        const result = await pg.query(request.sql, request.params as unknown[], {
          rowMode: "object",
        });
        return { id, ok: true, rows: result.rows, affected: result.affectedRows };
      }
    }
  };

  const drain = async () => {
    if (running) return;
    running = true;
    try {
      for (let request = next(); request; request = next()) {
        let reply: PgliteReply;
        try {
          reply = await run(request);
        } catch (error) {
          reply = { id: request.id, ok: false, error: errorFields(error) };
          if (!fenced && pg && isDiskFull(error)) {
            fenced = FENCED;
            reply.fenced = FENCED;
          }
        }
        post(reply);
      }
    } finally {
      running = false;
    }
  };

  globalThis.addEventListener("message", (event) => {
    queue.push((event as MessageEvent<PgliteRequest>).data);
    void drain();
  });
}

if (isPgliteWorker()) serveWorker();

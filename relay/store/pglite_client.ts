/**
 * @module
 * The relay's side of the embedded database's worker (`pglite_worker.ts`): a Kysely dialect that
 * posts each compiled statement, `{sql, params}`, to the worker and gets its rows back, so PGlite
 * runs on its own thread while the event loop keeps the sockets. Statements are pipelined: the
 * worker runs them in the order they were posted, and a transaction holds the worker's one
 * connection by its id (other callers' statements wait in the worker until it ends). Errors come
 * back with Postgres's fields (`code` 23505 and so on) on a plain `Error`. Requests in flight are
 * bounded ({@link MAX_IN_FLIGHT}); past the bound a statement fails with `53300`, which the relay
 * answers `503 unavailable` (a transaction's commit or rollback is never refused). After a disk-full error the worker fences itself and this side
 * reports it once through `onFence`; closing then ends the thread without a checkpoint.
 */

import {
  type CompiledQuery,
  createQueryId,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  IdentifierNode,
  type Kysely,
  PGliteAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryCompiler,
  type QueryResult,
  RawNode,
} from "kysely";
import {
  PGLITE_WORKER_NAME,
  type PgliteErrorFields,
  type PgliteReply,
  type PgliteRequest,
} from "./pglite_worker.ts";

/** Statements posted to the worker and not yet answered, at most. */
export const MAX_IN_FLIGHT = 10_000;
/** How long a clean close (PGlite's checkpoint) may take before the thread is ended anyway. */
export const CLOSE_TIMEOUT_MS = 5_000;

/** Requests without their id (the client numbers them). */
type Request = PgliteRequest extends infer R ? R extends { id: number } ? Omit<R, "id"> : never
  : never;

type Answer = Extract<PgliteReply, { ok: true }>;

/** The worker's module: beside this file in the source tree, the artifact itself when bundled. */
function workerUrl(): string | URL {
  return import.meta.url.endsWith("/relay/store/pglite_client.ts")
    ? new URL("./pglite_worker.ts", import.meta.url)
    : import.meta.url;
}

function errorFrom(fields: PgliteErrorFields): Error {
  const { message, name, ...rest } = fields;
  const error = Object.assign(new Error(message), rest);
  if (name && name !== "Error") Object.defineProperty(error, "name", { value: name });
  return error;
}

/** One PGlite worker and the requests in flight to it. */
export class PgliteWorkerClient {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(a: Answer): void; reject(e: Error): void }>();
  #nextId = 1;
  #nextTx = 1;
  #dead: Error | null = null;
  #fenced: string | null = null;
  readonly #onFence: (reason: string) => void;

  private constructor(onFence: (reason: string) => void) {
    this.#onFence = onFence;
    this.#worker = new Worker(workerUrl(), { type: "module", name: PGLITE_WORKER_NAME });
    this.#worker.onmessage = (event: MessageEvent<PgliteReply>) => this.#answer(event.data);
    this.#worker.onerror = (event) => {
      // An uncaught error in the worker (a PGlite abort) ends its database for this process.
      event.preventDefault();
      this.#end(Object.assign(new Error(`the embedded database failed: ${event.message}`), {
        code: "57P02",
      }));
      this.#fence(`the embedded database's thread failed: ${event.message}`);
    };
  }

  /** Starts a worker and opens PGlite in `dir` there. */
  static async open(dir: string, onFence: (reason: string) => void): Promise<PgliteWorkerClient> {
    const client = new PgliteWorkerClient(onFence);
    try {
      await client.request({ op: "open", dir });
    } catch (error) {
      client.#worker.terminate();
      throw error;
    }
    return client;
  }

  /** Why the database takes no more statements in this process, or null. */
  get fenced(): string | null {
    return this.#fenced;
  }

  /** A fresh transaction id. */
  transactionId(): number {
    return this.#nextTx++;
  }

  /** Posts one request; resolves with the worker's answer or rejects with its error. */
  request(request: Request): Promise<Answer> {
    if (this.#dead) return Promise.reject(this.#dead);
    // A transaction's end is never refused: the statements filling the bound may be waiting for
    // it, and a refused commit (then rollback) would leave the worker waiting for it for ever.
    const ending = request.op === "commit" || request.op === "rollback";
    if (this.#pending.size >= MAX_IN_FLIGHT && !ending) {
      return Promise.reject(Object.assign(
        new Error(`the embedded database has ${MAX_IN_FLIGHT} statements queued; retry later`),
        { code: "53300" },
      ));
    }
    const id = this.#nextId++;
    return new Promise<Answer>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...request, id } as PgliteRequest);
    });
  }

  /** Closes PGlite (a checkpoint, bounded by {@link CLOSE_TIMEOUT_MS}) and ends the thread. */
  async close(): Promise<void> {
    if (this.#dead) return;
    if (!this.#fenced) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.request({ op: "close" }).catch(() => {}),
        new Promise<void>((resolve) => timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)),
      ]);
      clearTimeout(timer);
    }
    this.#end(Object.assign(new Error("the embedded database is closed"), { code: "57P01" }));
  }

  #end(error: Error): void {
    if (this.#dead) return;
    this.#dead = error;
    this.#worker.terminate();
    for (const { reject } of this.#pending.values()) reject(error);
    this.#pending.clear();
  }

  #fence(reason: string): void {
    if (this.#fenced) return;
    this.#fenced = reason;
    this.#onFence(reason);
  }

  #answer(reply: PgliteReply): void {
    const waiter = this.#pending.get(reply.id);
    if (!waiter) return;
    this.#pending.delete(reply.id);
    if (reply.ok) return waiter.resolve(reply);
    if (reply.fenced) this.#fence(reply.fenced);
    waiter.reject(errorFrom(reply.error));
  }
}

/** A Kysely connection: statements go to the worker, inside this connection's transaction. */
class WorkerConnection implements DatabaseConnection {
  tx = 0;
  constructor(readonly client: PgliteWorkerClient) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const answer = await this.client.request({
      op: "query",
      sql: query.sql,
      params: query.parameters,
      tx: this.tx,
    });
    return {
      rows: (answer.rows ?? []) as R[],
      numAffectedRows: answer.affected != null ? BigInt(answer.affected) : undefined,
    };
  }

  // deno-lint-ignore require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("Streaming is not supported by PGlite.");
  }
}

/** The driver: every acquired connection shares the worker; transactions are told apart by id. */
class WorkerDriver implements Driver {
  constructor(readonly client: PgliteWorkerClient) {}
  async init(): Promise<void> {}
  acquireConnection(): Promise<DatabaseConnection> {
    return Promise.resolve(new WorkerConnection(this.client));
  }
  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    const conn = connection as WorkerConnection;
    conn.tx = this.client.transactionId();
    try {
      await this.client.request({ op: "begin", tx: conn.tx });
    } catch (error) {
      conn.tx = 0;
      throw error;
    }
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await this.#end(connection as WorkerConnection, "commit");
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await this.#end(connection as WorkerConnection, "rollback");
  }
  async #end(conn: WorkerConnection, op: "commit" | "rollback"): Promise<void> {
    const tx = conn.tx;
    conn.tx = 0;
    await this.client.request({ op, tx });
  }
  async savepoint(conn: DatabaseConnection, name: string, compile: QueryCompiler["compileQuery"]) {
    await conn.executeQuery(compile(savepointCommand("savepoint", name), createQueryId()));
  }
  async rollbackToSavepoint(
    conn: DatabaseConnection,
    name: string,
    compile: QueryCompiler["compileQuery"],
  ) {
    await conn.executeQuery(compile(savepointCommand("rollback to", name), createQueryId()));
  }
  async releaseSavepoint(
    conn: DatabaseConnection,
    name: string,
    compile: QueryCompiler["compileQuery"],
  ) {
    await conn.executeQuery(compile(savepointCommand("release", name), createQueryId()));
  }
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {
    await this.client.close();
  }
}

/** A savepoint command as Kysely builds it (the name quoted as an identifier). */
function savepointCommand(command: string, name: string): RawNode {
  return RawNode.createWithChildren([
    RawNode.createWithSql(`${command} `),
    IdentifierNode.create(name),
  ]);
}

/** Several connections at once (the worker orders them); no migration lock (one process). */
class WorkerAdapter extends PGliteAdapter {
  override get supportsMultipleConnections(): boolean {
    return true;
  }
}

/**
 * The Kysely dialect of the embedded database in its worker.
 *
 * @example
 * ```ts
 * const client = await PgliteWorkerClient.open("./data/pg", (reason) => log.error(reason));
 * const db = new Kysely<Database>({ dialect: new PgliteWorkerDialect(client) });
 * ```
 */
export class PgliteWorkerDialect implements Dialect {
  constructor(readonly client: PgliteWorkerClient) {}
  createAdapter(): DialectAdapter {
    return new WorkerAdapter();
  }
  createDriver(): Driver {
    return new WorkerDriver(this.client);
  }
  // deno-lint-ignore no-explicit-any
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }
}

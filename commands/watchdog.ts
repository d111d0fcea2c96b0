/**
 * @module
 * The stop watchdog of `serve`: a worker thread that ends the process with SIGKILL when it has not
 * exited `boundMs` after SIGTERM or SIGINT. `serve`'s own drain timer lives on the main thread and
 * cannot fire while that thread is stuck. Embedded PGlite used to run Postgres synchronously on
 * it, and after a failed WAL write on a full disk its next commit spins in `XLogFlush` for ever
 * (found with the inspector: `XLogFlush ← CommitTransactionCommand ← PostgresMainLoopOnce ←
 * execProtocolRawSync`, no system calls, 100 % CPU); PGlite now runs in a worker of its own
 * (`relay/store/pglite_worker.ts`), and this bound stays for whatever else could block the thread. Signals reach every thread's listeners, so
 * the worker still hears the stop and keeps the bound. Nothing acknowledged is lost by the kill:
 * commits reach the files before their acknowledgement.
 */

const WORKER = `
let armed = false;
const arm = (signal) => {
  if (armed) return;
  armed = true;
  setTimeout(() => {
    const line = JSON.stringify({
      time: new Date().toISOString(),
      level: "error",
      msg: "the relay did not stop within its drain bound after " + signal + "; killing it",
    });
    try { Deno.stderr.writeSync(new TextEncoder().encode(line + "\\n")); } catch { /* closed */ }
    Deno.kill(Deno.pid, "SIGKILL");
  }, BOUND_MS);
};
for (const signal of ["SIGTERM", "SIGINT"]) Deno.addSignalListener(signal, () => arm(signal));
postMessage("armed");
`;

/**
 * Starts the watchdog; resolves once its signal listeners are in place.
 *
 * @example
 * ```ts
 * await startStopWatchdog(config.drainTimeout + 2_000);
 * ```
 */
export async function startStopWatchdog(boundMs: number): Promise<void> {
  const source = WORKER.replace("BOUND_MS", String(Math.max(0, Math.round(boundMs))));
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module", name: "stop-watchdog" });
  await new Promise<void>((resolve, reject) => {
    worker.onmessage = () => resolve();
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(`Cannot start the stop watchdog: ${event.message}`));
    };
  });
  URL.revokeObjectURL(url);
}

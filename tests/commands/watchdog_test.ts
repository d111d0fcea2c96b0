/**
 * The stop watchdog (`commands/watchdog.ts`): a process whose main thread is stuck (as embedded
 * PGlite's is in `XLogFlush` after a failed write on a full disk) still ends within its bound
 * after SIGTERM, and a process that stops by itself is not disturbed.
 */

import assert from "node:assert/strict";

const WATCHDOG = new URL("../../commands/watchdog.ts", import.meta.url).href;

/** Runs a child that arms the watchdog (bound 500 ms), then runs `then` on its main thread. */
function child(then: string): Deno.ChildProcess {
  const code = `import { startStopWatchdog } from ${JSON.stringify(WATCHDOG)};
await startStopWatchdog(500);
${then}`;
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function readLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.pipeThrough(
    new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>,
  ).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  reader.releaseLock();
  return text.trim();
}

Deno.test("startStopWatchdog() kills a process whose main thread is stuck, within its bound after SIGTERM", async () => {
  const proc = child(`console.log("spinning"); while (true) { /* stuck like XLogFlush */ }`);
  assert.equal(await readLine(proc.stdout), "spinning");
  const sent = performance.now();
  proc.kill("SIGTERM");
  const status = await proc.status;
  const took = performance.now() - sent;
  assert.equal(status.signal, "SIGKILL");
  assert.ok(took >= 450 && took < 10_000, `ended ${Math.round(took)} ms after SIGTERM`);
  const stderr = await new Response(proc.stderr).text();
  assert.match(stderr, /did not stop within its drain bound after SIGTERM; killing it/);
});

Deno.test("startStopWatchdog() leaves a process that stops by itself alone", async () => {
  const proc = child(`Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
console.log("waiting");
setTimeout(() => {}, 60_000);`);
  assert.equal(await readLine(proc.stdout), "waiting");
  proc.kill("SIGTERM");
  const status = await proc.status;
  assert.equal(status.code, 0);
  assert.equal(status.signal, null);
  await proc.stderr.cancel();
});

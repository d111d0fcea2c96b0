/**
 * @module
 * Runs the `sealpost` command line (`deno run -A main.ts …`) as a child process, the way a user
 * does: one-shot commands with their exit code and output, and `serve` as a long-running process
 * the test can wait for, signal or `kill -9`. The child gets a clean environment, so settings of
 * the machine running the tests (a `DATABASE_URL`, say) cannot leak into it.
 */

/** The project root and the CLI entry point. */
export const ROOT = new URL("../../", import.meta.url).pathname;
export const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** What the child inherits: enough to find Deno's cache and temp dirs, nothing else. */
const PASS_THROUGH = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "DENO_TLS_CA_STORE"];

/** A clean environment for the child plus `extra`. */
export function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of PASS_THROUGH) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

function command(args: string[], env: Record<string, string>, piped: boolean): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    cwd: ROOT,
    env: cliEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: piped ? "piped" : "null",
    stderr: "piped",
  });
}

/** The result of a one-shot command. */
export type CliResult = { code: number; stdout: string; stderr: string };

/**
 * Runs `sealpost <args>` to completion.
 *
 * @example
 * ```ts
 * const { code, stderr } = await runCli(["nope"]);
 * ```
 */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const out = await command(args, env, true).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** A running `sealpost serve`. */
export interface ServeProcess {
  readonly child: Deno.ChildProcess;
  /** `http://127.0.0.1:<port>` once it listens. */
  readonly url: string;
  /** Every stdout line (JSON logs) so far. */
  readonly lines: string[];
  /** Every stderr line so far. */
  readonly errors: string[];
  /** Sends `signal` and waits for the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

async function collect(stream: ReadableStream<Uint8Array>, into: string[], onLine: () => void) {
  let rest = "";
  const decoder = new TextDecoder();
  for await (const bytes of stream) {
    const parts = (rest + decoder.decode(bytes, { stream: true })).split("\n");
    rest = parts.pop() ?? "";
    into.push(...parts);
    onLine();
  }
  if (rest) into.push(rest);
  onLine();
}

/**
 * Starts `sealpost serve` on a free loopback port with JSON logs and waits until it listens
 * (parsing the port from its "listening" log line). Throws with the child's output if it exits
 * or does not listen within `timeoutMs`.
 */
export async function startServe(
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<ServeProcess> {
  const child = command(["serve"], {
    SEALPOST_HOST: "127.0.0.1",
    PORT: "0",
    SEALPOST_LOG_FORMAT: "json",
    ...env,
  }, true).spawn();
  const lines: string[] = [];
  const errors: string[] = [];
  let wake = () => {};
  const changed = () => wake();
  const readers = Promise.all([
    collect(child.stdout, lines, changed),
    collect(child.stderr, errors, changed),
  ]);
  let exited: number | null = null;
  const status = child.status.then((s) => {
    exited = s.code;
    changed();
    return s.code;
  });

  const deadline = Date.now() + timeoutMs;
  let url: string | null = null;
  while (!url) {
    for (const line of lines) {
      const match = /listening on (http:\/\/[^\s"]+)/.exec(line);
      if (match) url = match[1];
    }
    if (url) break;
    if (exited !== null || Date.now() > deadline) {
      if (exited === null) child.kill("SIGKILL");
      await status;
      throw new Error(
        `sealpost serve did not start (exit ${exited}):\n${[...lines, ...errors].join("\n")}`,
      );
    }
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, 100);
    });
  }
  return {
    child,
    url,
    lines,
    errors,
    stop: async (signal: Deno.Signal = "SIGTERM") => {
      if (exited === null) {
        try {
          child.kill(signal);
        } catch { /* already exited */ }
      }
      const code = await status;
      await readers.catch(() => {});
      return code;
    },
  };
}

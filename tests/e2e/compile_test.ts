/**
 * `deno task compile`, the single binary the Dockerfile ships. `deno compile` needs `denort`, the
 * Deno runtime without the toolchain, which it downloads from dl.deno.land unless `DENORT_BIN`
 * names a local copy. Neither npm's `deno` package nor the Deno cache on the test machines has
 * one, and they cannot download it, so here the test runs the task's exact command with
 * `DENORT_BIN` pointing at nothing: that proves everything before the runtime is joined — the
 * type check and the module graph, PGlite's WebAssembly and data included (imported as bytes,
 * relay/store/pglite_assets.ts, so no `--include` of node_modules paths is needed) — and the
 * bundle test (bundle_test.ts) stands in for running the artifact, from a folder without
 * node_modules. With a real denort (`DENORT_BIN=/path/to/denort`), the test compiles the binary,
 * runs it from an empty folder on embedded PGlite, and checks `/readyz`, `doctor` and `version`.
 */

import assert from "node:assert/strict";
import { freePort } from "../helpers/postgres.ts";
import { VERSION } from "../../relay/base/version.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const task: string = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)).tasks.compile;
const denort = Deno.env.get("DENORT_BIN");
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** The compile task's arguments, with the output moved to `out`. */
function compileArgs(out: string): string[] {
  const args = task.split(/\s+/);
  assert.equal(args[0], "deno");
  assert.equal(args[1], "compile");
  const output = args.indexOf("--output");
  args[output + 1] = out;
  return args.slice(1);
}

Deno.test({
  name: denort
    ? "deno task compile builds a binary that serves from an empty folder"
    : "deno task compile type-checks and resolves everything up to the runtime (no denort here)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sealpost-compile-" });
    try {
      const binary = `${dir}/sealpost`;
      const result = await new Deno.Command(Deno.execPath(), {
        args: compileArgs(binary),
        cwd: ROOT,
        env: { DENORT_BIN: denort ?? `${dir}/no-denort-here`, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const output = decode(result.stdout) + decode(result.stderr);
      assert.doesNotMatch(output, /include|node_modules/i, "nothing is included by path");
      if (!denort) {
        // Type check and module graph passed; it stopped where the runtime is joined.
        assert.equal(result.success, false);
        assert.match(output, /Compile .*main\.ts/);
        assert.match(output, /Could not find denort at '.*no-denort-here'/);
        assert.doesNotMatch(output, /TS\d{4}|Module not found|Import .* failed/);
        return;
      }
      assert.ok(result.success, output);
      const work = `${dir}/run`;
      await Deno.mkdir(work);
      const version = await new Deno.Command(binary, { args: ["version"], cwd: work }).output();
      assert.equal(decode(version.stdout).trim(), VERSION);
      const port = freePort();
      const child = new Deno.Command(binary, {
        args: ["serve"],
        cwd: work,
        env: { PORT: String(port), SEALPOST_HOST: "127.0.0.1", SEALPOST_DATA_DIR: `${work}/data` },
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        let ready = 0;
        for (let i = 0; i < 100 && ready !== 200; i++) {
          await new Promise((r) => setTimeout(r, 300));
          ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(async (r) => {
            await r.body?.cancel();
            return r.status;
          }, () => 0);
        }
        assert.equal(ready, 200, "the compiled relay became ready on embedded PGlite");
      } finally {
        child.kill("SIGTERM");
        await child.status;
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

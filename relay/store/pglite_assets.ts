/**
 * @module
 * PGlite's WebAssembly (Postgres and initdb) and its file-system bundle, imported as bytes so
 * that `deno compile` embeds them in the binary and `deno bundle` inlines them in the bundle:
 * nothing is read from `node_modules` (or from beside the artifact) at run time. PGlite would
 * otherwise fetch them from `new URL("./pglite.wasm", import.meta.url)`, which in a compiled
 * binary only works when the build's `--include` paths happen to match its virtual file system.
 * Byte imports need Deno's `raw-imports` (enabled in deno.json's `unstable` list); the modules
 * are compiled once per process and shared by every PGlite opened in it.
 */

import pgliteWasm from "pglite-dist/pglite.wasm" with { type: "bytes" };
import initdbWasm from "pglite-dist/initdb.wasm" with { type: "bytes" };
import pgliteData from "pglite-dist/pglite.data" with { type: "bytes" };

/** The options PGlite takes instead of fetching its files. */
export type PgliteAssets = {
  pgliteWasmModule: WebAssembly.Module;
  initdbWasmModule: WebAssembly.Module;
  fsBundle: Blob;
};

let assets: Promise<PgliteAssets> | undefined;

/**
 * PGlite's compiled modules and data bundle, built on first use.
 *
 * @example
 * ```ts
 * const pg = await PGlite.create({ dataDir, ...await pgliteAssets() });
 * ```
 */
export function pgliteAssets(): Promise<PgliteAssets> {
  assets ??= (async () => ({
    pgliteWasmModule: await WebAssembly.compile(pgliteWasm),
    initdbWasmModule: await WebAssembly.compile(initdbWasm),
    fsBundle: new Blob([pgliteData]),
  }))();
  return assets;
}

/**
 * The layout rules of docs/architecture.md, checked on the source tree by parsing every relative
 * `import`/`export … from` (type-only ones included): `relay/` never imports `admin/`,
 * `commands/` or `main.ts`; `relay/base/` imports nothing outside itself; `client/` imports
 * nothing outside itself; no import cycle anywhere; `relay/`'s top level stays the message path
 * (at most 20 files); no source file passes 500 lines; every file opens with its `@module` doc.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
const SOURCE_DIRS = ["relay", "admin", "commands", "client"];

/** Every `.ts`/`.tsx` file under the source folders, plus `main.ts`, as root-relative paths. */
function sourceFiles(): string[] {
  const files: string[] = ["main.ts"];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(`${ROOT}${dir}`)) {
      const path = `${dir}/${entry.name}`;
      // Installed packages and build output (client/node_modules, client/dist) are not ours.
      if (entry.isDirectory && ["node_modules", "dist"].includes(entry.name)) continue;
      if (entry.isDirectory) walk(path);
      else if (/\.tsx?$/.test(entry.name)) files.push(path);
    }
  };
  for (const dir of SOURCE_DIRS) walk(dir);
  return files.sort();
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']/g;
const DYNAMIC = /import\(\s*["']([^"']+)["']\s*\)/g;

/** The root-relative files `file` imports (relative specifiers only; npm ones are skipped). */
export function importsOf(file: string, text: string): string[] {
  const specs = [...text.matchAll(IMPORT), ...text.matchAll(DYNAMIC)].map((m) => m[1]);
  return specs.filter((spec) => spec.startsWith(".")).map((spec) =>
    new URL(spec, `file:///${file}`).pathname.slice(1)
  );
}

function graph(): Map<string, string[]> {
  return new Map(
    sourceFiles().map((file) => [file, importsOf(file, Deno.readTextFileSync(`${ROOT}${file}`))]),
  );
}

/** One import cycle of `edges` as `a -> b -> a`, or null. */
export function findCycle(edges: Map<string, string[]>): string | null {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string): string | null => {
    state.set(node, "open");
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      if (state.get(next) === "open") {
        return [...stack.slice(stack.indexOf(next)), next].join(" -> ");
      }
      if (!state.has(next)) {
        const found = visit(next);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(node, "done");
    return null;
  };
  for (const node of edges.keys()) {
    if (state.has(node)) continue;
    const found = visit(node);
    if (found) return found;
  }
  return null;
}

Deno.test("importsOf() and findCycle() see static, re-exported, type-only and dynamic imports", () => {
  const text = [
    'import { a } from "./a.ts";',
    'import type { B } from "../base/b.ts";',
    'export { c } from "./c/mod.ts";',
    "import {\n  d,\n  type E,\n} from './d.ts';",
    'const f = await import("./f.ts");',
    'import { z } from "zod";',
  ].join("\n");
  assert.deepEqual(importsOf("relay/x/y.ts", text), [
    "relay/x/a.ts",
    "relay/base/b.ts",
    "relay/x/c/mod.ts",
    "relay/x/d.ts",
    "relay/x/f.ts",
  ]);
  assert.equal(findCycle(new Map([["a", ["b"]], ["b", ["c"]], ["c", []]])), null);
  assert.equal(
    findCycle(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["b"]]])),
    "b -> c -> b",
  );
});

Deno.test("relay/ imports nothing from admin/, commands/ or main.ts", () => {
  const bad = [...graph()].flatMap(([file, imports]) =>
    file.startsWith("relay/")
      ? imports.filter((to) => /^(admin|commands)\//.test(to) || to === "main.ts")
        .map((to) => `${file} -> ${to}`)
      : []
  );
  assert.deepEqual(bad, []);
});

Deno.test("relay/base/ and client/ import nothing outside themselves", () => {
  const bad = [...graph()].flatMap(([file, imports]) => {
    const home = ["relay/base/", "client/"].find((dir) => file.startsWith(dir));
    return home ? imports.filter((to) => !to.startsWith(home)).map((to) => `${file} -> ${to}`) : [];
  });
  assert.deepEqual(bad, []);
});

Deno.test("no import cycle among the source files (type-only imports included)", () => {
  assert.equal(findCycle(graph()), null);
});

Deno.test("relay/'s top level is the message path: at most 20 files, every other in a folder", () => {
  const top = [...Deno.readDirSync(`${ROOT}relay`)].filter((e) => e.isFile).map((e) => e.name);
  assert.ok(top.length <= 20, `relay/ holds ${top.length} files: ${top.sort().join(", ")}`);
});

/** Files allowed past 500 lines, each with why. */
const LONG_ALLOWED: Record<string, string> = {};

Deno.test("every source file is under 500 lines and opens with its @module doc", () => {
  const problems: string[] = [];
  for (const file of sourceFiles()) {
    const text = Deno.readTextFileSync(`${ROOT}${file}`);
    const lines = text.split("\n").length;
    if (lines > 500 && !(file in LONG_ALLOWED)) problems.push(`${file}: ${lines} lines`);
    if (!/^(#![^\n]*\n)?\/\*\*\s*\n\s*\*\s*@module/.test(text)) {
      problems.push(`${file}: no @module doc first`);
    }
  }
  assert.deepEqual(problems, []);
});

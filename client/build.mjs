// Builds the publishable package: dist/mod.js (one ESM file, by esbuild) and dist/*.d.ts (by tsc).
// Run by `npm run build` and by `npm pack` / `npm publish` (the prepack script).
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = fileURLToPath(new URL(".", import.meta.url));
rmSync(`${here}dist`, { recursive: true, force: true });
await build({
  entryPoints: [`${here}mod.ts`],
  outfile: `${here}dist/mod.js`,
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning",
});
execFileSync(process.execPath, [`${here}node_modules/typescript/bin/tsc`, "-p", `${here}tsconfig.json`], {
  stdio: "inherit",
});
// tsc keeps the source's `./x.ts` specifiers in declarations; published files name `./x.js`.
for (const name of readdirSync(`${here}dist`).filter((n) => n.endsWith(".d.ts"))) {
  const path = `${here}dist/${name}`;
  writeFileSync(path, readFileSync(path, "utf8").replace(/(from\s+"\.\/[\w.]+)\.ts"/g, '$1.js"'));
}

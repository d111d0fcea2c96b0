/**
 * The client docs' examples run: the `ts` blocks of docs/client.md (one program, in order) and
 * README.md's "A first client" run against a real relay, type-checked, with `console.assert`
 * made to throw — so a wrong example fails here.
 */
import assert from "node:assert/strict";
import { startTestRelay } from "../helpers/relay.ts";

const ROOT = new URL("../../", import.meta.url);

/** The ```ts blocks of a markdown file. */
function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
}

/** Runs `code` (from a doc) as its own module against `relay`; throws with its output on failure. */
async function runDoc(code: string, relay: string): Promise<void> {
  const program = [
    "console.assert = (ok: unknown, ...what: unknown[]) => {",
    '  if (!ok) throw new Error(`Assertion failed ${what.join(" ")}`);',
    "};",
    code.replaceAll('"@sealpost/client"', JSON.stringify(new URL("client/mod.ts", ROOT).href))
      .replaceAll('"http://localhost:8080"', JSON.stringify(relay)),
    "export {};",
  ].join("\n");
  const dir = await Deno.makeTempDir({ prefix: "sealpost-doc-" });
  try {
    await Deno.writeTextFile(`${dir}/doc.ts`, program);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--check", "--no-config", "--allow-net", `${dir}/doc.ts`],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `the example failed:\n${text}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "docs/client.md: every ts example runs against a relay",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const blocks = tsBlocks(await Deno.readTextFile(new URL("docs/client.md", ROOT)));
    assert.ok(blocks.length >= 10, "the page has its examples");
    const t = await startTestRelay();
    try {
      await runDoc(blocks.join("\n"), t.url);
    } finally {
      await t.stop();
    }
  },
});

Deno.test({
  name: "README.md: A first client runs against a relay",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const readme = await Deno.readTextFile(new URL("README.md", ROOT));
    const section = readme.split("## A first client")[1].split("\n## ")[0];
    const [block] = tsBlocks(section);
    assert.ok(block?.includes('from "@sealpost/client"'), "the README imports the package");
    const t = await startTestRelay();
    try {
      await runDoc(block, t.url);
    } finally {
      await t.stop();
    }
  },
});

/**
 * The published package, `@sealpost/client`, as its users get it: `npm pack` in `client/` builds
 * it (the prepack script) into a tarball, and the SAME build chats with a real relay from Node's
 * own test runner (a project outside the repo that `npm install`s the tarball), from Deno
 * (importing the built `dist/`) and from Chromium (loading the built ESM in a page).
 */

import assert from "node:assert/strict";
import { browserUnavailable, launchBrowser } from "../admin/browser.ts";
import { startTestRelay } from "../helpers/relay.ts";
import { chat, check } from "./package_scenario.mjs";

const CLIENT = new URL("../../client/", import.meta.url).pathname;
const SCENARIO = new URL("./package_scenario.mjs", import.meta.url).pathname;

/** Why node (>= 20) and npm cannot run here (fails under CI), or null. */
function nodeUnavailable(): string | null {
  let why: string | null = null;
  for (const tool of ["node", "npm"]) {
    try {
      const out = new Deno.Command(tool, { args: ["--version"] }).outputSync();
      const version = new TextDecoder().decode(out.stdout).trim();
      if (!out.success) why = `${tool} --version failed`;
      else if (tool === "node" && Number(version.slice(1).split(".")[0]) < 20) {
        why = `node ${version} is older than 20`;
      }
    } catch {
      why = `${tool} is not installed`;
    }
    if (why) break;
  }
  if (why && Deno.env.get("CI") === "true") throw new Error(`CI=true but ${why}`);
  return why;
}

async function run(
  cmd: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed in ${options.cwd}:\n${text}`);
  return text;
}

let packing: Promise<string> | undefined;

/** Packs the client once per test process (building `dist/`); returns the tarball's path. */
function packed(): Promise<string> {
  packing ??= (async () => {
    try {
      await Deno.stat(`${CLIENT}node_modules/esbuild`);
    } catch {
      await run("npm", ["ci", "--no-audit", "--no-fund"], { cwd: CLIENT });
    }
    const dest = await Deno.makeTempDir({ prefix: "sealpost-pack-" });
    await run("npm", ["pack", "--pack-destination", dest], { cwd: CLIENT });
    const [tarball] = [...Deno.readDirSync(dest)].filter((e) => e.name.endsWith(".tgz"));
    assert.ok(tarball, "npm pack wrote a tarball");
    return `${dest}/${tarball.name}`;
  })();
  return packing;
}

const why = nodeUnavailable();
if (why) console.warn(`skipping the package tests: ${why}`);

Deno.test({
  name: "package: npm pack builds ESM and declarations, no dependencies, version tied to v1",
  ignore: why !== null,
  fn: async () => {
    const tarball = await packed();
    const listing = await run("tar", ["-tzf", tarball], { cwd: CLIENT });
    for (
      const file of [
        "package/dist/mod.js",
        "package/dist/mod.d.ts",
        "package/package.json",
        "package/README.md",
      ]
    ) {
      assert.ok(listing.includes(file), `${file} is in the tarball`);
    }
    assert.ok(!/^package\/[a-z_]+\.ts$/m.test(listing), "no TypeScript source in the tarball");
    const pkg = JSON.parse(await Deno.readTextFile(`${CLIENT}package.json`));
    const { PROTOCOL_VERSION } = await import("../../relay/base/version.ts");
    assert.equal(Number(pkg.version.split(".")[0]), PROTOCOL_VERSION);
    assert.equal(pkg.dependencies, undefined);
    assert.deepEqual(pkg.exports["."], { types: "./dist/mod.d.ts", import: "./dist/mod.js" });
    // client/package.json's build tools stay out of the project's Deno lockfile and modules.
    const lock = await Deno.readTextFile(new URL("../../deno.lock", import.meta.url));
    assert.ok(!/npm:(esbuild|typescript)@/.test(lock), "deno.lock has no client build tools");
    // The bundle is plain JavaScript: Node parses it without any TypeScript support.
    await run("node", ["--check", `${CLIENT}dist/mod.js`], { cwd: CLIENT });
  },
});

Deno.test({
  name: "package: Node's test runner chats through the installed tarball",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const tarball = await packed();
    const t = await startTestRelay();
    const project = await Deno.makeTempDir({ prefix: "sealpost-node-app-" });
    try {
      await Deno.writeTextFile(
        `${project}/package.json`,
        JSON.stringify({ name: "chat-app", private: true, type: "module" }),
      );
      await run("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball], {
        cwd: project,
      });
      await Deno.copyFile(SCENARIO, `${project}/package_scenario.mjs`);
      await Deno.writeTextFile(
        `${project}/chat.test.mjs`,
        `import { test } from "node:test";
import assert from "node:assert/strict";
import * as sdk from "@sealpost/client";
import { chat, check } from "./package_scenario.mjs";

test("@sealpost/client chats with a relay", async () => {
  check(await chat(sdk, process.env.SEALPOST_URL));
});

test("a session ends in failed, not a loop, when the relay refuses its credentials", async () => {
  const api = new sdk.HttpClient(process.env.SEALPOST_URL);
  api.token = "not-a-token";
  const session = new sdk.Session(api, { minBackoffMs: 20 });
  await assert.rejects(session.ready(), (e) => e instanceof sdk.SessionError);
  assert.equal(session.state, "failed");
  session.close();
});
`,
      );
      // Node 20 has WebSocket behind a flag; later versions have it on.
      const major = Number((await run("node", ["--version"], { cwd: project })).slice(1, 3));
      const flags = major < 22 ? ["--experimental-websocket"] : [];
      const out = await run("node", [...flags, "--test", "chat.test.mjs"], {
        cwd: project,
        env: { SEALPOST_URL: t.url, NO_COLOR: "1" },
      });
      assert.match(out, /# pass 2/);
      assert.match(out, /# fail 0/);
      // A TypeScript app type-checks against the published declarations (Node's resolution).
      await Deno.writeTextFile(
        `${project}/app.ts`,
        `import { HttpClient, Session, type SessionState } from "@sealpost/client";
const api = new HttpClient("http://127.0.0.1:1");
const state: SessionState = new Session(api, { whileDisconnected: "reject" }).state;
export { state };
`,
      );
      await Deno.writeTextFile(
        `${project}/tsconfig.json`,
        JSON.stringify({
          compilerOptions: {
            module: "NodeNext",
            moduleResolution: "NodeNext",
            target: "ES2022",
            lib: ["ES2022", "DOM"],
            strict: true,
            noEmit: true,
          },
          files: ["app.ts"],
        }),
      );
      await run("node", [`${CLIENT}node_modules/typescript/bin/tsc`, "-p", project], {
        cwd: project,
      });
    } finally {
      await t.stop();
      await Deno.remove(project, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "package: Deno chats through the built dist/",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await packed();
    const t = await startTestRelay();
    try {
      const dist = new URL("../../client/dist/mod.js", import.meta.url).href;
      const sdk: typeof import("../../client/mod.ts") = await import(dist);
      check(await chat(sdk, t.url));
    } finally {
      await t.stop();
    }
  },
});

const noBrowser = why ?? browserUnavailable();

Deno.test({
  name: "package: Chromium chats through the built ESM loaded in a page",
  ignore: noBrowser !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await packed();
    const t = await startTestRelay();
    const files: Record<string, string> = {
      "/": `<!doctype html><meta charset="utf-8"><title>sealpost client</title>`,
      "/mod.js": await Deno.readTextFile(`${CLIENT}dist/mod.js`),
      "/package_scenario.mjs": await Deno.readTextFile(SCENARIO),
    };
    const site = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
      const body = files[new URL(req.url).pathname];
      if (body === undefined) return new Response("not found", { status: 404 });
      const type = req.url.endsWith("/") ? "text/html" : "text/javascript";
      return new Response(body, { headers: { "content-type": type } });
    });
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => void errors.push(String(e)));
      await page.goto(`http://127.0.0.1:${site.addr.port}/`);
      const summary = await page.evaluate(async (url: string) => {
        const sdk = await import("/mod.js" as string);
        const scenario = await import("/package_scenario.mjs" as string);
        const result = await scenario.chat(sdk, url);
        scenario.check(result);
        return result;
      }, t.url);
      check(summary);
      // Coming back online or to the foreground retries at once instead of after the backoff.
      const woken = await page.evaluate(async () => {
        const sdk = await import("/mod.js" as string);
        const api = new sdk.HttpClient("http://127.0.0.1:9"); // nothing listens there
        api.token = "unused";
        const states: string[] = [];
        const session = new sdk.Session(api, {
          minBackoffMs: 60_000,
          maxBackoffMs: 60_000,
          onState: (state: string) => void states.push(state),
        });
        const tries = () => states.filter((s) => s === "connecting").length;
        const disconnected = async () => {
          for (let i = 0; i < 200 && session.state !== "disconnected"; i++) {
            await new Promise((r) => setTimeout(r, 25));
          }
        };
        await disconnected();
        const before = tries();
        globalThis.dispatchEvent(new Event("online"));
        const afterOnline = tries();
        await disconnected();
        document.dispatchEvent(new Event("visibilitychange"));
        const afterVisible = tries();
        session.close();
        return { before, afterOnline, afterVisible };
      });
      assert.deepEqual(woken, { before: 1, afterOnline: 2, afterVisible: 3 });
      assert.deepEqual(errors, []);
    } finally {
      await browser.dispose();
      await site.shutdown();
      await t.stop();
    }
  },
});

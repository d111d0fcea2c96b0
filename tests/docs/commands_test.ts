/**
 * Every command a user is told to run in README.md, docs/ and the example and bench READMEs (the
 * lines of their `sh` blocks) is either run here, checked here, or matched by a rule that names
 * the test or script that runs it in CI, or says why it cannot run on a test machine (Docker,
 * Fly, the public internet). A command no rule matches fails the test, so a new instruction in
 * the docs comes with a way to prove it. Run here: the `sealpost` commands (as `deno run -A
 * main.ts`, which is what the binary is) against a fresh data directory, `serve` until it is
 * ready, the `curl` lines against it, and every `VAR=value` line through the relay's own parser
 * for that setting.
 */

import assert from "node:assert/strict";
import { SETTINGS } from "../../relay/config/config.ts";
import { cliEnv, MAIN, ROOT, runCli } from "../helpers/cli.ts";
import { freePort } from "../helpers/postgres.ts";

/** Markdown files whose `sh` blocks are instructions. */
const DOCS = [
  "README.md",
  ...[...Deno.readDirSync(`${ROOT}docs`)].filter((e) => e.name.endsWith(".md")).map((e) =>
    `docs/${e.name}`
  ),
  "examples/chat/README.md",
  "bench/README.md",
  "client/README.md",
].filter((path) => {
  try {
    return Deno.statSync(`${ROOT}${path}`).isFile;
  } catch {
    return false;
  }
}).sort();

/** A shell line without its trailing ` # comment` (a `#` inside quotes stays). */
function stripComment(line: string): string {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

/** The commands of a file's shell blocks: comments dropped, `\` continuations joined. */
function commandsOf(markdown: string): string[] {
  const out: string[] = [];
  for (const [, body] of markdown.matchAll(/```(?:sh|bash|shell|console)\n([\s\S]*?)```/g)) {
    let pending = "";
    for (const raw of body.split("\n")) {
      const line = stripComment(raw).trim();
      if (!line || line.startsWith("#")) continue;
      if (line.endsWith("\\")) {
        pending += line.slice(0, -1).trim() + " ";
        continue;
      }
      out.push((pending + line).trim());
      pending = "";
    }
  }
  return out;
}

type Context = { dataDir: string; url: string };

/** How a documented command is proven: run here, or done elsewhere for a stated reason. */
type Rule = {
  match: RegExp;
  why?: string;
  run?: (command: string, ctx: Context) => void | Promise<void>;
};

const BY_ENV = new Map(Object.values(SETTINGS).map((s) => [s.env, s]));

/** `VAR=value` lines: each value must parse with the relay's parser for that setting. */
function checkAssignment(command: string): void {
  const [, name, raw] = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(command)!;
  const value = raw.replace(/^(['"])(.*)\1$/, "$2");
  const setting = BY_ENV.get(name);
  assert.ok(setting, `${command}: ${name} is not a setting`);
  if (/[<…]/.test(value)) return; // a placeholder for the reader's own value
  setting.parse(value);
}

/** A `sealpost …` or `deno run -A main.ts …` command, run to completion with a fresh data dir. */
async function runSealpost(command: string, ctx: Context): Promise<void> {
  const [prefix, ...rest] = command.replace(/^deno run -A main\.ts\s*/, "sealpost ").split(/\s+/);
  assert.equal(prefix, "sealpost");
  const args = rest.map((a) => a.replace(/^\/srv\/sealpost$|^\/var\/lib\/sealpost$/, ctx.dataDir))
    .map((a) => a.replace(/^now\.sealpost$/, `${ctx.dataDir}/now.sealpost`));
  const result = await runCli(args, { SEALPOST_DATA_DIR: ctx.dataDir });
  assert.equal(result.code, 0, `${command}\n${result.stdout}${result.stderr}`);
}

/** `curl` of the relay's address: the same request against the relay this test started. */
async function runCurl(command: string, ctx: Context): Promise<void> {
  const target = /(?:https?:\/\/)?localhost:8080(\/\S*)/.exec(command)?.[1];
  assert.ok(target, command);
  const response = await fetch(`${ctx.url}${target}`);
  assert.equal(response.status, 200, command);
  const body = await response.json();
  if (target === "/readyz") assert.deepEqual(body, { ready: true });
  if (target.endsWith("openapi.json")) assert.equal(body.openapi, "3.1.0");
  if (target.endsWith("asyncapi.json")) assert.equal(body.asyncapi, "3.0.0");
}

const NO_DOCKER = "Docker does not run on the test machines; tests/deploy/compose_test.ts checks " +
  "the compose files, tests/e2e/bundle_test.ts and compile_test.ts the artifact";

/** First match wins. */
const RULES: Rule[] = [
  { match: /^[A-Z_][A-Z0-9_]*=\S*$/, run: checkAssignment },
  {
    match: /^(sealpost|deno run -A main\.ts) (serve --help|migrate|doctor|backup now\.sealpost)$/,
    run: runSealpost,
  },
  { match: /^deno run -A main\.ts doctor --data-dir \/var\/lib\/sealpost$/, run: runSealpost },
  {
    match: /^sealpost admin invites list \[--json\]$/,
    run: (c, ctx) => runSealpost(c.replace(" [--json]", " --json"), ctx),
  },
  { match: /^sealpost sweep --dry-run$/, run: runSealpost },
  {
    // In a data dir of its own: it leaves the schema behind the newest on purpose.
    match: /^sealpost migrate --to \d+$/,
    run: (c, ctx) => runSealpost(c, { ...ctx, dataDir: `${ctx.dataDir}/rolled-back` }),
  },
  { match: /^curl -s (http:\/\/)?localhost:8080\//, run: runCurl },
  {
    match: /^(PORT=9000 SEALPOST_REGISTRATION=invite )?deno task start( --port 9000)?$/,
    why: "serve with the start task's exact permissions: tests/commands/serve_test.ts; the flag " +
      "and variables: tests/relay/config/config_test.ts",
  },
  {
    match: /^(SEALPOST_[A-Z_]+=\S+ |DATABASE_URL=\S+ )+deno task start$/,
    why: "each variable is one of the settings parsed above; serving: serve_test.ts",
  },
  {
    match: /^deno run -A main\.ts serve --port 9000 --data-dir \/srv\/sealpost$/,
    why: "flags over variables: tests/relay/config/config_test.ts; serving: serve_test.ts",
  },
  {
    match:
      /^(echo '.*' \| sealpost admin set-password|sealpost admin (devices|invites|set-password) .*)$/,
    why: "every admin subcommand and form: tests/commands/admin_test.ts",
  },
  {
    match: /^SEALPOST_ADMIN_PASSWORD=\S+.* sealpost serve$/,
    why: "the admin password setting: tests/admin/auth_test.ts",
  },
  {
    match:
      /^(printf '%s' .* > \/run\/secrets\/database_url|DATABASE_URL_FILE=\S+ sealpost doctor)$/,
    why: "*_FILE secrets: tests/relay/config/config_test.ts and tests/commands/serve_test.ts",
  },
  {
    match: /^OTEL_.* sealpost serve$/,
    why: "OpenTelemetry export to a collector: tests/e2e/otel_test.ts",
  },
  {
    match:
      /^(sealpost (backup|restore|export|import) \S+|SEALPOST_DATA_DIR=\S+ sealpost export \S+|DATABASE_URL=.* sealpost import \S+|0 3 \* \* \* .*sealpost backup .*)$/,
    why: "backup, restore, export and import: tests/relay/archive/ and tests/commands/cli_test.ts",
  },
  {
    match: /^SEALPOST_BACKUP_INTERVAL=\S+ SEALPOST_BACKUP_KEEP=\S+ deno task start$/,
    why: "scheduled backups: tests/relay/jobs/backup_schedule_test.ts",
  },
  { match: /^\$ sealpost sweep --dry-run$/, run: (c, ctx) => runSealpost(c.slice(2), ctx) },
  {
    match: /^(would remove|\d+ devices are inactive|took \d+ ms)/,
    why: "sample output of the command above, not a command",
  },
  { match: /^deno task test$|^bash \.ci\/run$/, why: "the whole suite: what CI itself runs" },
  { match: /^deno task check$/, why: "run before every commit; CI type-checks every test" },
  {
    match: /^deno task bench\b/,
    why: "benchmarks take minutes on an idle machine; results and method in bench/README.md",
  },
  {
    match:
      /^(rm -rf \/tmp\/peers\S* && cp -r \.\.\/shared\/peers |.*\/tmp\/peers\S*\/run\.sh |deno run --allow-all bench\/thread_cpu\.ts )/,
    why: "the peer harness lives beside the repository (../shared/peers) and runs for minutes " +
      "against a live relay; its results and method are in bench/README.md",
  },
  {
    match: /^deno task example:chat\b/,
    why: "the chat example in a real browser: tests/e2e/mls_chat_browser_test.ts",
  },
  {
    match: /^(cd client && npm ci && npm pack|cd \.\.\/my-app && npm install \S+\.tgz)$/,
    why: "packing and installing the client: tests/client/package_test.ts",
  },
  { match: /^(docker|cp \.env\.example \.env$|sed -i .* \.env$)/, why: NO_DOCKER },
  { match: /^docker compose exec relay sealpost backup /, why: NO_DOCKER },
  {
    match: /^fly /,
    why: "Fly.io is not reachable from the test machines; fly.toml's settings are the relay's " +
      "own (SEALPOST_METRICS_PORT: tests/commands/serve_test.ts)",
  },
  {
    match: /^SEALPOST_ADMIN_PASSWORD="\$\(openssl|^SEALPOST_METRICS_TOKEN="\$\(openssl/,
    why: "continuation of a fly secrets command (Fly is not reachable)",
  },
];

Deno.test("every command in README.md and docs/ is run, checked, or has a stated reason", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "sealpost-docs-" });
  const port = freePort();
  const serve = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "serve"],
    cwd: ROOT,
    clearEnv: true,
    env: cliEnv({
      PORT: String(port),
      SEALPOST_HOST: "127.0.0.1",
      SEALPOST_DATA_DIR: `${dataDir}/served`,
      SEALPOST_LOG_FORMAT: "json",
    }),
    stdout: "null",
    stderr: "null",
  }).spawn();
  const ctx: Context = { dataDir, url: `http://127.0.0.1:${port}` };
  const unmatched: string[] = [];
  let ran = 0;
  try {
    let ready = 0;
    for (let i = 0; i < 150 && ready !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      ready = await fetch(`${ctx.url}/readyz`).then(async (r) => {
        await r.body?.cancel();
        return r.status;
      }, () => 0);
    }
    assert.equal(ready, 200, "the relay for the curl lines is ready");
    for (const path of DOCS) {
      for (const command of commandsOf(await Deno.readTextFile(`${ROOT}${path}`))) {
        const rule = RULES.find((r) => r.match.test(command));
        if (!rule) {
          unmatched.push(`${path}: ${command}`);
          continue;
        }
        if (rule.run) {
          await rule.run(command, ctx);
          ran++;
        }
      }
    }
  } finally {
    serve.kill("SIGTERM");
    await serve.status;
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
  assert.deepEqual(unmatched, [], "documented commands with no way to prove them: add a rule");
  assert.ok(ran >= 20, `only ${ran} commands were run here`);
});

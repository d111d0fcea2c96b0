/**
 * Tests of commands/serve.ts as a user runs it (`sealpost serve` in a child process): the private
 * metrics port (`SEALPOST_METRICS_PORT`) serves `/metrics` without the token while the main port
 * keeps requiring it; secrets given as `*_FILE` (here the metrics token and the admin password,
 * as Docker secrets mount them) are read from their files; serve runs with exactly the
 * permissions `deno task start` grants (no `--allow-run`: nothing spawns a process). And on a
 * full disk: `sealpost serve` on embedded PGlite whose disk fills up with no reserve left to
 * protect it (`SEALPOST_DISK_RESERVE=0`, or another program filling the disk): the first failed
 * write fences the database (in its worker, `relay/store/pglite_worker.ts`), every request keeps
 * getting an answer (`503`, never a hang at 100 % CPU), the relay drains and exits 75 for its
 * supervisor, and a restart once space is back holds every acknowledged message. Also: a relay
 * started on a disk below its reserve waits for space before opening the database, and a stop
 * signal sent the moment serve says it listens drains it (exit 0).
 */

import assert from "node:assert/strict";
import { cliEnv, ROOT, startServe } from "../helpers/cli.ts";
import { freePort } from "../helpers/postgres.ts";
import { HttpClient } from "../../client/mod.ts";
import { cipher, newDevice } from "../helpers/accounts.ts";
import { openTestDatabase } from "../helpers/relay.ts";
import { mountSmallFs, smallFsUnavailable } from "../helpers/small_fs.ts";

const MIB = 1024 * 1024;
const why = smallFsUnavailable();

/** A data directory under `dir` holding a copy of an already migrated PGlite database. */
async function migratedDataDirIn(dir: string): Promise<string> {
  const { handle, dataDir: template } = await openTestDatabase("pglite");
  await handle.close();
  const dataDir = `${dir}/data`;
  await Deno.mkdir(dataDir);
  const copy = await new Deno.Command("cp", { args: ["-a", `${template}/pg`, `${dataDir}/pg`] })
    .output();
  assert.ok(copy.success);
  return dataDir;
}

Deno.test({
  name:
    "sealpost serve on PGlite on a full disk answers 503 instead of hanging, exits 75, and a restart keeps every acknowledged message",
  ignore: why !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const fs = await mountSmallFs(160);
    try {
      const dataDir = await migratedDataDirIn(fs.dir);
      const env = {
        SEALPOST_DATA_DIR: dataDir,
        SEALPOST_RATE_SEND: "off",
        SEALPOST_DISK_RESERVE: "0",
        SEALPOST_DRAIN_TIMEOUT: "5s",
      };
      const first = await startServe(env);
      const alice = await newDevice(first.url, "alice");
      const group = await alice.api.createGroup();
      await fs.fill(6 * MIB);
      const acknowledged: number[] = [];
      const statuses: number[] = [];
      // Every request must be answered within 10 s; 45 KB incompressible bodies fill 6 MiB in
      // about 130 sends (bounded at 400).
      for (let i = 0; i < 400 && !statuses.includes(503); i++) {
        const response = await fetch(`${first.url}/v1/groups/${group.id}/messages`, {
          method: "POST",
          headers: { authorization: `Bearer ${alice.token}`, "content-type": "application/json" },
          body: JSON.stringify({ client_id: `m${i}`, body: cipher(45_000) }),
          signal: AbortSignal.timeout(10_000),
        }).catch((error) => {
          // The relay exits right after fencing: a refused connection is an answer, not a hang.
          if (error.name === "TimeoutError") throw new Error(`send ${i} hung: no answer in 10 s`);
          return null;
        });
        if (!response) break;
        const body = await response.json();
        statuses.push(response.status);
        if (response.status === 201) acknowledged.push(body.seq);
        else assert.equal(body.error.code, "unavailable", JSON.stringify(body));
      }
      assert.ok(statuses.every((s) => s === 201 || s === 503), JSON.stringify(statuses));
      assert.ok(acknowledged.length > 10, `only ${acknowledged.length} sends went through`);
      // The fenced relay stops by itself within its drain bound, with EX_TEMPFAIL.
      const code = await Promise.race([
        first.stop("SIGCONT"), // a no-op signal: just wait for the exit
        new Promise<string>((resolve) => setTimeout(() => resolve("still running"), 20_000)),
      ]);
      if (code === "still running") await first.stop("SIGKILL");
      assert.equal(code, 75, [...first.lines, ...first.errors].slice(-5).join("\n"));
      assert.ok([...first.lines, ...first.errors].some((l) => /database cannot continue/.test(l)));

      await fs.unfill();
      const second = await startServe(env);
      try {
        const api = new HttpClient(second.url);
        await api.login(alice.identity);
        const { messages } = await api.messages(group.id, 0, 1000);
        const stored = new Set(messages.map((m) => m.seq));
        for (const seq of acknowledged) assert.ok(stored.has(seq), `message ${seq} was lost`);
      } finally {
        assert.equal(await second.stop("SIGTERM"), 0, second.errors.join("\n"));
      }
    } finally {
      await fs.unmount();
    }
  },
});

Deno.test({
  name:
    "sealpost serve on a data directory below its disk reserve waits for space before opening the database",
  ignore: why !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const fs = await mountSmallFs(96);
    try {
      const dataDir = await migratedDataDirIn(fs.dir);
      await fs.fill(8 * MIB);
      const started = performance.now();
      const serving = startServe({ SEALPOST_DATA_DIR: dataDir, SEALPOST_DISK_RESERVE: "24MiB" });
      let listening = false;
      serving.then(() => listening = true, () => {});
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      assert.equal(listening, false, "it must not open the database on a full disk");
      await fs.unfill();
      const serve = await serving;
      try {
        assert.ok(performance.now() - started >= 3_000);
        assert.ok(
          serve.errors.some((l) => /waiting for disk space before opening the database/.test(l)),
          serve.errors.join("\n"),
        );
        assert.equal((await fetch(`${serve.url}/readyz`)).status, 200);
      } finally {
        assert.equal(await serve.stop("SIGTERM"), 0, serve.errors.join("\n"));
      }
    } finally {
      await fs.unmount();
    }
  },
});

Deno.test({
  name:
    "sealpost serve drains and exits 0 on a SIGTERM sent the moment it says it listens (no start-up window)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // Before the fix the stop listeners were installed after the "listening" line, behind the
    // watchdog's start: a SIGTERM right after that line ended the process with 143 (no listener
    // yet) or, heard only by the watchdog, left it serving until the kill (137).
    for (let i = 0; i < 2; i++) {
      const dir = await Deno.makeTempDir({ prefix: "sealpost-serve-race-" });
      try {
        const serve = await startServe({ SEALPOST_DATA_DIR: `${dir}/data` });
        const code = await serve.stop("SIGTERM");
        assert.equal(code, 0, [...serve.lines, ...serve.errors].slice(-5).join("\n"));
        assert.ok(serve.lines.some((l) => /"draining"/.test(l)), serve.lines.join("\n"));
        assert.ok(serve.lines.some((l) => /"stopped"/.test(l)), serve.lines.join("\n"));
      } finally {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    }
  },
});

Deno.test("serve: SEALPOST_METRICS_PORT serves /metrics without the token; *_FILE secrets are read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sealpost-serve-" });
  try {
    await Deno.writeTextFile(`${dir}/metrics_token`, "file-token\n");
    await Deno.writeTextFile(`${dir}/admin_password`, "a long admin password from a file\n");
    const metricsPort = freePort();
    const serve = await startServe({
      SEALPOST_DATA_DIR: `${dir}/data`,
      SEALPOST_METRICS_PORT: String(metricsPort),
      SEALPOST_METRICS_TOKEN_FILE: `${dir}/metrics_token`,
      SEALPOST_ADMIN_PASSWORD_FILE: `${dir}/admin_password`,
    });
    try {
      const open = await fetch(`${serve.url}/metrics`);
      await open.body?.cancel();
      assert.equal(open.status, 401, "the public port still needs the token");
      const withToken = await fetch(`${serve.url}/metrics`, {
        headers: { authorization: "Bearer file-token" },
      });
      assert.equal(withToken.status, 200, "the token came from SEALPOST_METRICS_TOKEN_FILE");
      assert.match(await withToken.text(), /^# HELP sealpost_/m);

      const scrape = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(scrape.status, 200);
      assert.match(await scrape.text(), /^# HELP sealpost_/m);
      const other = await fetch(`http://127.0.0.1:${metricsPort}/v1/info`);
      await other.body?.cancel();
      assert.equal(other.status, 404, "the metrics port serves nothing else");

      // The admin password from the file logs in (no one-time setup link was needed).
      const page = await fetch(`${serve.url}/admin/login`);
      const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0];
      const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1] ?? "";
      const login = await fetch(`${serve.url}/admin/login`, {
        method: "POST",
        headers: { cookie },
        body: new URLSearchParams({ _csrf: csrf, password: "a long admin password from a file" }),
        redirect: "manual",
      });
      await login.body?.cancel();
      assert.equal(login.status, 303, "admin login with the password from the file");
      assert.equal(await serve.stop(), 0);
    } finally {
      await serve.stop("SIGKILL");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve runs with exactly the permissions of deno task start (no --allow-run), and drains on SIGTERM", async () => {
  const task: string = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.start;
  const args = task.split(/\s+/).slice(1); // after "deno"
  assert.ok(!args.includes("--allow-run") && !args.includes("-A"), task);
  // Not under TMPDIR: CI points that at /dev/shm, and Deno grants paths under /dev only to
  // --allow-all ("Requires all access"), which is not what users run with.
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "sealpost-perms-" });
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    clearEnv: true,
    env: cliEnv({
      PORT: String(port),
      SEALPOST_HOST: "127.0.0.1",
      SEALPOST_DATA_DIR: `${dir}/data`,
      SEALPOST_LOG_FORMAT: "json",
    }),
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    // A fresh data directory runs PGlite's initdb first: on a loaded machine that takes a while.
    let ready = 0;
    for (let i = 0; i < 300 && ready !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(async (r) => {
        await r.body?.cancel();
        return r.status;
      }, () => 0);
    }
    assert.equal(ready, 200, "ready without a permission prompt or error");
    const info = await fetch(`http://127.0.0.1:${port}/v1/info`);
    assert.equal(info.status, 200);
    await info.body?.cancel();
    child.kill("SIGTERM");
    const status = await child.status;
    const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
    assert.equal(status.code, 0, stderr);
    assert.doesNotMatch(stderr, /NotCapable|PermissionDenied|Requires .* access/);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await Deno.remove(dir, { recursive: true });
  }
});

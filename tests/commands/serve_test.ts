/**
 * Tests of commands/serve.ts as a user runs it (`sealpost serve` in a child process): the private
 * metrics port (`SEALPOST_METRICS_PORT`) serves `/metrics` without the token while the main port
 * keeps requiring it, and secrets given as `*_FILE` (here the metrics token and the admin
 * password, as Docker secrets mount them) are read from their files.
 */

import assert from "node:assert/strict";
import { startServe } from "../helpers/cli.ts";
import { freePort } from "../helpers/postgres.ts";

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

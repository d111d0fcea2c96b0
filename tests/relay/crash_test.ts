/**
 * Crash safety of the embedded database: `sealpost serve` on PGlite is killed with SIGKILL while
 * devices register over HTTP; started again on the same data directory, it still knows every
 * registration it acknowledged. Also: a SIGTERM drains and exits 0.
 */

import assert from "node:assert/strict";
import { createDeviceIdentity, type DeviceIdentity, HttpClient } from "../../client/mod.ts";
import { startServe } from "../helpers/cli.ts";
import { openTestDatabase } from "../helpers/relay.ts";

/** A data dir holding a migrated PGlite database (a copy of the test template). */
async function migratedDataDir(): Promise<string> {
  const { handle, dataDir } = await openTestDatabase("pglite");
  await handle.close();
  return dataDir;
}

Deno.test({
  name: "sealpost serve on PGlite killed with SIGKILL keeps every acknowledged registration",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dataDir = await migratedDataDir();
    const env = { SEALPOST_DATA_DIR: dataDir, SEALPOST_RATE_AUTH: "off" };
    try {
      const first = await startServe(env);
      const acknowledged: DeviceIdentity[] = [];
      let killed = false;
      // Four clients register devices back to back until the process dies under them.
      const worker = async () => {
        while (!killed) {
          const me = await createDeviceIdentity();
          try {
            await new HttpClient(first.url).register(me, { name: `d${acknowledged.length}` });
            if (!killed) acknowledged.push(me);
          } catch (error) {
            if (killed) return;
            throw error;
          }
        }
      };
      const workers = [worker(), worker(), worker(), worker()];
      while (acknowledged.length < 40) await new Promise((r) => setTimeout(r, 10));
      const count = acknowledged.length;
      killed = true;
      const code = await first.stop("SIGKILL");
      assert.notEqual(code, 0);
      await Promise.all(workers);
      assert.ok(count >= 40);

      const second = await startServe(env);
      try {
        assert.equal((await fetch(`${second.url}/readyz`)).status, 200);
        for (const me of acknowledged) {
          const api = new HttpClient(second.url);
          await api.login(me);
          const { devices } = await api.devices(me.account);
          assert.equal(devices.length, 1);
          assert.equal(devices[0].id, me.device.id);
        }
      } finally {
        assert.equal(await second.stop("SIGTERM"), 0, second.errors.join("\n"));
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "sealpost serve logs where it listens and where data lives, and drains on SIGTERM",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dataDir = await migratedDataDir();
    try {
      const serve = await startServe({ SEALPOST_DATA_DIR: dataDir });
      try {
        const listening = serve.lines.map((l) => JSON.parse(l)).find((l) =>
          /listening on http:\/\/127\.0\.0\.1:\d+$/.test(l.msg)
        );
        assert.ok(listening, serve.lines.join("\n"));
        assert.equal(listening.data_dir, dataDir);
        assert.match(listening.database, new RegExp(`embedded PGlite in ${dataDir}/pg`));
        assert.equal((await fetch(`${serve.url}/readyz`)).status, 200);
        const me = await createDeviceIdentity();
        await new HttpClient(serve.url).register(me);
      } finally {
        assert.equal(await serve.stop("SIGTERM"), 0);
      }
      const messages = serve.lines.map((l) => JSON.parse(l).msg);
      assert.ok(messages.includes("draining"), messages.join("\n"));
      assert.ok(messages.includes("stopped"), messages.join("\n"));
      // stderr carries only warnings (such as the admin setup link), as JSON log lines.
      for (const line of serve.errors.filter((l) => l.trim())) {
        assert.equal(JSON.parse(line).level, "warn", line);
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

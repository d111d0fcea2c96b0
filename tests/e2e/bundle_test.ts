/**
 * The single-file artifact: `deno bundle` of main.ts (what CI can build here; the Dockerfile runs
 * `deno compile` on the same entry, see compile_test.ts) is started on embedded PGlite and on
 * Postgres from a folder that holds nothing but the bundle — no node_modules, no PGlite files
 * beside it (PGlite's WebAssembly and data are inlined, relay/store/pglite_assets.ts) — and a
 * device registers, creates a group, sends and receives over WebSocket through it.
 */
import assert from "node:assert/strict";
import { cipher, newDevice } from "../helpers/accounts.ts";
import { freePort, sharedPostgres } from "../helpers/postgres.ts";
import { dbUnavailable } from "../helpers/relay.ts";
import { Instance } from "../helpers/topology.ts";
import { RawSocket } from "../helpers/ws.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function bundle(dir: string): Promise<string> {
  const out = `${dir}/sealpost.js`;
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "deno", "-o", out, "main.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!result.success) {
    throw new Error(`deno bundle failed: ${new TextDecoder().decode(result.stderr)}`);
  }
  return out;
}

async function exercise(url: string): Promise<void> {
  const alice = await newDevice(url);
  const bob = await newDevice(url);
  const group = await alice.api.createGroup({ members: [bob.account] });
  const ws = await RawSocket.authed(url.replace("http", "ws") + "/v1/ws", bob.token);
  ws.send({ t: "sub", groups: null });
  await ws.next((f) => f.t === "synced");
  const body = cipher(200);
  const sent = await alice.api.send(group.id, { body });
  assert.equal(sent.seq, 1);
  const msg = await ws.next((f) => f.t === "msg");
  assert.equal(msg.body, body);
  ws.close();
}

for (const db of ["pglite", "postgres"] as const) {
  const why = dbUnavailable(db);
  Deno.test({
    name: `the bundled artifact serves the protocol [${db}]`,
    ignore: why !== null,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: "sealpost-bundle-" });
      let instance: Instance | null = null;
      try {
        const entry = await bundle(dir);
        const env: Record<string, string> = {
          SEALPOST_DATA_DIR: `${dir}/data`,
          SEALPOST_RATE_AUTH: "off",
        };
        if (db === "postgres") env.DATABASE_URL = await (await sharedPostgres()).createDatabase();
        const files = [...Deno.readDirSync(dir)].map((e) => e.name);
        assert.deepEqual(files, ["sealpost.js"], "the bundle runs alone");
        instance = new Instance(`bundle-${db}`, freePort(), env, `${dir}/relay.log`, entry, dir);
        await instance.start();
        await exercise(instance.url);
        assert.equal(await instance.terminate(), 0, "drains and exits cleanly");
      } finally {
        await instance?.kill();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
  });
}

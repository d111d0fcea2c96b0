/**
 * The rolling-deploy rule of docs/operations.md, run: version N of the relay (this repository's
 * tree just before its latest migrations were added, taken with `git archive`) and version N+1
 * (this tree) on one throwaway Postgres. N serves; N+1 migrates the schema (expand only) while N
 * keeps running; both serve side by side, messages crossing between them through the bus; N
 * cannot start anew on N+1's schema (it refuses a database migrated by a newer binary); after
 * `sealpost migrate --to N` with the N+1 binary, N starts again and every message is there.
 */

import assert from "node:assert/strict";
import { MIGRATIONS } from "../../migrations/mod.ts";
import { cipher, newDevice } from "../helpers/accounts.ts";
import { cliEnv, MAIN, ROOT } from "../helpers/cli.ts";
import { freePort, sharedPostgres } from "../helpers/postgres.ts";
import { dbUnavailable } from "../helpers/relay.ts";
import { Instance } from "../helpers/topology.ts";
import { RawSocket } from "../helpers/ws.ts";

const ALL = Object.keys(MIGRATIONS);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function git(args: string[]): Promise<Uint8Array> {
  const out = await new Deno.Command("git", { args, cwd: ROOT, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`git ${args.join(" ")}: ${decode(out.stderr)}`);
  return out.stdout;
}

/** The migration names a tree's `migrations/mod.ts` lists, in order. */
function listed(modTs: string): string[] {
  return [...modTs.matchAll(/^\s*"(\d{4}_\w+)":/gm)].map((m) => m[1]);
}

/**
 * Version N: the tree just before the newest commit that added migrations, among those whose
 * list is a strict prefix of this tree's (append-only, as migrations/mod.ts requires), unpacked
 * in `dir`, with the migrations it knows.
 */
async function previousVersion(dir: string): Promise<{ root: string; migrations: string[] }> {
  const current = Object.keys(MIGRATIONS);
  const commits = decode(await git(["log", "--format=%H", "--", "migrations/mod.ts"])).trim()
    .split("\n");
  let found: { rev: string; migrations: string[] } | null = null;
  for (const commit of commits) {
    const before = listed(decode(await git(["show", `${commit}^:migrations/mod.ts`])));
    const prefix = before.length < current.length && before.every((m, i) => current[i] === m);
    if (prefix) {
      found = { rev: `${commit}^`, migrations: before };
      break;
    }
  }
  assert.ok(found, "an earlier version whose migrations are a prefix of these");
  const tar = `${dir}/old.tar`;
  await git(["archive", "--format=tar", "-o", tar, found.rev]);
  const root = `${dir}/old`;
  await Deno.mkdir(root);
  const untar = await new Deno.Command("tar", { args: ["-xf", tar, "-C", root] }).output();
  assert.ok(untar.success);
  // The same npm packages (the lock rarely changes between neighbouring commits).
  await Deno.symlink(`${ROOT}node_modules`, `${root}/node_modules`);
  return { root, migrations: found.migrations };
}

async function cli(main: string, args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", main, ...args],
    cwd: main.replace(/\/main\.ts$/, ""),
    clearEnv: true,
    env: cliEnv(env),
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

const why = dbUnavailable("postgres");

Deno.test({
  name: "version N and N+1 serve one Postgres during a rolling deploy; migrate --to rolls back",
  ignore: why !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sealpost-rolling-" });
    const instances: Instance[] = [];
    try {
      const old = await previousVersion(dir);
      const oldMain = `${old.root}/main.ts`;
      const PREVIOUS = old.migrations.at(-1)!;
      const NEWER = ALL.slice(old.migrations.length);
      const env = {
        DATABASE_URL: await (await sharedPostgres()).createDatabase(),
        SEALPOST_RATE_AUTH: "off",
        SEALPOST_DATA_DIR: `${dir}/data`,
      };
      const start = async (id: string, main: string) => {
        const cwd = main.replace(/\/main\.ts$/, "");
        const instance = new Instance(id, freePort(), env, `${dir}/${id}.log`, main, cwd);
        instances.push(instance);
        await instance.start();
        return instance;
      };

      // Version N alone, on its schema.
      const n = await cli(oldMain, ["migrate"], env);
      assert.equal(n.code, 0, n.stderr);
      assert.match(n.stdout, new RegExp(`the schema is at ${PREVIOUS}$`, "m"));
      const oldRelay = await start("n", oldMain);
      const alice = await newDevice(oldRelay.url, "alice");
      const group = await alice.api.createGroup();
      await alice.api.send(group.id, { body: cipher(40), client_id: "before" });

      // The deploy: N+1 migrates (expand only) while N serves, then N+1 starts beside it.
      const up = await cli(MAIN, ["migrate"], env);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(up.stdout.trim(), `Applied ${NEWER.join(", ")}; the schema is at ${ALL.at(-1)}`);
      const ready = await fetch(`${oldRelay.url}/readyz`);
      assert.equal(ready.status, 200, "N stays ready on N+1's schema");
      await ready.body?.cancel();
      const newRelay = await start("n1", MAIN);

      // Both versions serve: a send through either reaches a socket on the other.
      const bob = await newDevice(newRelay.url, "bob");
      await alice.api.putMember(group.id, bob.account);
      const onNew = await RawSocket.authed(
        `${newRelay.url.replace("http", "ws")}/v1/ws`,
        bob.token,
      );
      onNew.send({ t: "sub", groups: null });
      await onNew.next((f) => f.t === "synced");
      const fromOld = cipher(50);
      await alice.api.send(group.id, { body: fromOld, client_id: "during-1" });
      assert.equal((await onNew.next((f) => f.t === "msg" && f.body === fromOld)).body, fromOld);
      const onOld = await RawSocket.authed(
        `${oldRelay.url.replace("http", "ws")}/v1/ws`,
        alice.token,
      );
      onOld.send({ t: "sub", groups: null });
      await onOld.next((f) => f.t === "synced");
      const fromNew = cipher(60);
      await bob.api.send(group.id, { body: fromNew, client_id: "during-2" });
      assert.equal((await onOld.next((f) => f.t === "msg" && f.body === fromNew)).body, fromNew);
      onNew.close();
      onOld.close();

      // N cannot start anew on N+1's schema: it refuses a newer database.
      const refused = await cli(oldMain, ["migrate"], env);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /migrated by a newer Sealpost \(unknown migration /);

      // Roll back: stop everything, N+1 reverts its migration, N starts again with every message.
      for (const instance of instances.splice(0)) assert.equal(await instance.terminate(), 0);
      const down = await cli(MAIN, ["migrate", "--to", PREVIOUS], env);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(
        down.stdout.trim(),
        `Reverted ${NEWER.toReversed().join(", ")}; the schema is at ${PREVIOUS}`,
      );
      const again = await start("n-again", oldMain);
      const page = await (await fetch(`${again.url}/v1/groups/${group.id}/messages`, {
        headers: { authorization: `Bearer ${alice.token}` },
      })).json();
      assert.deepEqual(page.messages.map((m: { body: string }) => m.body).slice(1), [
        fromOld,
        fromNew,
      ]);
      assert.equal(page.messages.length, 3);
    } finally {
      for (const instance of instances) await instance.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/**
 * One owner per embedded data directory (`commands/data_dir.ts`, `commands/control.ts`,
 * `relay/store/data_dir_lock.ts`), with real `sealpost` processes: a backup of a live relay goes
 * through its control socket and holds every acknowledged row; `admin`, `migrate`, `sweep`,
 * `restore` and a second `serve` refuse with one line and leave the database alone; `kill -9`
 * releases the lock.
 */

import assert from "node:assert/strict";
import { ArchiveReader } from "../../relay/archive/format.ts";
import { LOCK_FILE, lockDataDir } from "../../relay/store/data_dir_lock.ts";
import { runCli, startServe } from "../helpers/cli.ts";
import { cipher, newDevice } from "../helpers/accounts.ts";
import { openTestDatabase } from "../helpers/relay.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A data dir holding a migrated PGlite database (a copy of the test template). */
async function migratedDataDir(): Promise<string> {
  const { handle, dataDir } = await openTestDatabase("pglite");
  await handle.close();
  return dataDir;
}

/** Rows per table and blob count of an archive file. */
async function readArchive(file: string): Promise<{ rows: Map<string, number>; blobs: number }> {
  const reader = new ArchiveReader((await Deno.open(file)).readable);
  const rows = new Map<string, number>();
  let blobs = 0;
  let ended = false;
  for (let record = await reader.next(); record; record = await reader.next()) {
    if ("table" in record) {
      rows.set(record.table, (rows.get(record.table) ?? 0) + record.rows.length);
    }
    if ("blob_end" in record) blobs++;
    if ("end" in record) ended = true;
  }
  assert.ok(ended, "the archive ends with its trailer");
  return { rows, blobs };
}

/** PGlite's postmaster.pid: a second PGlite opened on the directory rewrites it. */
async function pidFile(dataDir: string): Promise<{ text: string; mtime: number }> {
  const path = `${dataDir}/pg/postmaster.pid`;
  return { text: await Deno.readTextFile(path), mtime: (await Deno.stat(path)).mtime!.getTime() };
}

Deno.test({
  name: "sealpost backup of a live embedded relay goes through it and holds every acknowledged row",
  ...opts,
  fn: async () => {
    const dataDir = await migratedDataDir();
    const out = await Deno.makeTempDir();
    // Signed blob URLs need the public URL, so the port is chosen before the relay starts.
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const serve = await startServe({
      SEALPOST_DATA_DIR: dataDir,
      SEALPOST_RATE_SEND: "off",
      PORT: String(port),
      SEALPOST_PUBLIC_URL: `http://127.0.0.1:${port}`,
    });
    try {
      const alice = await newDevice(serve.url, "alice");
      const group = await alice.api.createGroup();
      const blob = await alice.api.putBlob(group.id, crypto.getRandomValues(new Uint8Array(5000)));
      // Sends keep running during the backup; every one acknowledged before it started is in it.
      let acknowledged = 0;
      for (; acknowledged < 30; acknowledged++) {
        const sent = await alice.api.send(group.id, {
          client_id: `m${acknowledged}`,
          body: cipher(200),
          blob: acknowledged === 0 ? blob.id : undefined,
        });
        assert.equal(sent.status, 201);
      }
      let stop = false;
      const more = (async () => {
        for (let i = 0; !stop && i < 500; i++) {
          await alice.api.send(group.id, { client_id: `late${i}`, body: cipher(200) });
        }
      })();
      const file = `${out}/live.sealpost`;
      const result = await runCli(["backup", file], { SEALPOST_DATA_DIR: dataDir });
      stop = true;
      await more;
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /through the running relay \(pid \d+\)/);
      const archive = await readArchive(file);
      assert.ok(archive.rows.get("messages")! >= acknowledged, `${archive.rows.get("messages")}`);
      assert.equal(archive.rows.get("devices"), 1);
      assert.equal(archive.rows.get("groups"), 1);
      assert.equal(archive.blobs, 1);
      // No temporary file is left beside the archive or in the data directory.
      assert.deepEqual([...Deno.readDirSync(out)].map((e) => e.name), ["live.sealpost"]);
      assert.deepEqual(
        [...Deno.readDirSync(`${dataDir}/control`)].map((e) => e.name),
        ["relay.sock"],
      );
      // The archive file may not be overwritten.
      const again = await runCli(["backup", file], { SEALPOST_DATA_DIR: dataDir });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /it exists/);
    } finally {
      assert.equal(await serve.stop("SIGTERM"), 0, serve.errors.join("\n"));
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      await Deno.remove(out, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "sealpost admin, migrate, sweep, restore and a second serve refuse a live data directory with one line",
  ...opts,
  fn: async () => {
    const dataDir = await migratedDataDir();
    const serve = await startServe({ SEALPOST_DATA_DIR: dataDir });
    const env = { SEALPOST_DATA_DIR: dataDir };
    try {
      const before = await pidFile(dataDir);
      const invite = await runCli(["admin", "invites", "create", "--uses", "3"], env);
      assert.equal(invite.code, 1, invite.stdout);
      assert.equal(invite.stdout, "");
      const lines = invite.stderr.trim().split("\n");
      assert.equal(lines.length, 1, invite.stderr);
      assert.match(
        lines[0],
        new RegExp(
          `^sealpost: Cannot run 'sealpost admin': the data directory ${dataDir} is in use by sealpost serve \\(pid ${serve.child.pid}\\); use the dashboard`,
        ),
      );
      for (const args of [["migrate"], ["sweep"], ["restore", "/nonexistent.sealpost"]]) {
        const result = await runCli(args, env);
        assert.equal(result.code, 1, `${args[0]}: ${result.stderr}`);
        assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
        assert.match(result.stderr, new RegExp(`Cannot run 'sealpost ${args[0]}'.*in use by`));
      }
      const second = await runCli(["serve", "--port", "0", "--host", "127.0.0.1"], env);
      assert.equal(second.code, 1);
      assert.match(
        second.stderr,
        /Cannot run 'sealpost serve'.*give this relay its own --data-dir/,
      );
      const doctor = await runCli(["doctor"], env);
      assert.match(doctor.stdout, /ok\s+database\s+embedded PGlite .* owned by sealpost serve/);
      // Nothing wrote a second PGlite into the live directory.
      assert.deepEqual(await pidFile(dataDir), before);
      assert.equal((await fetch(`${serve.url}/readyz`)).status, 200);
    } finally {
      assert.equal(await serve.stop("SIGTERM"), 0, serve.errors.join("\n"));
    }
    try {
      // With the relay stopped the same command works, and no invite was created before.
      const list = await runCli(["admin", "invites", "list", "--json"], env);
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(JSON.parse(list.stdout), { invites: [] });
    } finally {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "sealpost serve killed with SIGKILL releases the data directory's lock",
  ...opts,
  fn: async () => {
    const dataDir = await migratedDataDir();
    try {
      const first = await startServe({ SEALPOST_DATA_DIR: dataDir });
      await assert.rejects(lockDataDir(dataDir, "test"), /in use by sealpost serve/);
      assert.notEqual(await first.stop("SIGKILL"), 0);
      // The kernel dropped the lock with the process; the stale socket file is replaced.
      const lock = await lockDataDir(dataDir, "test");
      lock.release();
      const holder = JSON.parse(await Deno.readTextFile(`${dataDir}/${LOCK_FILE}`));
      assert.equal(holder.pid, Deno.pid);
      const second = await startServe({ SEALPOST_DATA_DIR: dataDir });
      try {
        assert.equal((await fetch(`${second.url}/readyz`)).status, 200);
        const out = await Deno.makeTempDir();
        const backup = await runCli(["backup", `${out}/b.sealpost`], {
          SEALPOST_DATA_DIR: dataDir,
        });
        assert.equal(backup.code, 0, backup.stderr);
        await Deno.remove(out, { recursive: true });
      } finally {
        assert.equal(await second.stop("SIGTERM"), 0, second.errors.join("\n"));
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

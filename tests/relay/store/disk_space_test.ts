/**
 * A full disk is an answer, not a hang (`relay/store/disk_space.ts`, the disk-full rows of
 * `relay/errors.ts`): below `SEALPOST_DISK_RESERVE` sends and blob uploads answer
 * `503 unavailable` with `retry_after_ms`, `/readyz` says why, and all of it resumes by itself
 * when space returns — on a real small file system (a tmpfs mounted by the test, as root), on
 * both databases; and a server Postgres whose own disk is full answers `503`, not `500`.
 */

import assert from "node:assert/strict";
import { DiskSpace } from "../../../relay/store/disk_space.ts";
import { RelayError } from "../../../relay/errors.ts";
import { overviewHtml } from "../../helpers/admin.ts";
import { cipher, newDevice } from "../../helpers/accounts.ts";
import { openTestDatabase, startTestRelay, testBothDatabases } from "../../helpers/relay.ts";
import { startPostgres } from "../../helpers/postgres.ts";
import { mountSmallFs, type SmallFs, smallFsUnavailable } from "../../helpers/small_fs.ts";
import { RawSocket } from "../../helpers/ws.ts";
import { call } from "../../helpers/http.ts";
import { newSendCapability, setSendCapability } from "../../../client/mod.ts";

/** base64url SHA-256 of `bytes`, as a blob declaration carries it. */
async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return btoa(String.fromCharCode(...digest)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

const MIB = 1024 * 1024;

Deno.test("DiskSpace refuses below its reserve (a size or a share), says why, and reports each change", () => {
  let free = 100 * MIB;
  const fake = () => ({ bavail: free / 4096, blocks: (1000 * MIB) / 4096, bsize: 4096 });
  const disk = new DiskSpace("/data", { bytes: 64 * MIB }, fake);
  const changes: boolean[] = [];
  disk.onChange((status) => changes.push(status.low));
  assert.equal(disk.refresh()?.low, false);
  disk.assertRoom();
  free = 10 * MIB;
  // Readings are reused for a second: the cached one still says there is room.
  disk.assertRoom();
  const low = disk.refresh()!;
  assert.equal(low.low, true);
  assert.match(low.reason!, /10 MiB free in \/data, below the reserve of 64 MiB/);
  assert.throws(() => disk.assertRoom(), (error: unknown) => {
    assert.ok(error instanceof RelayError);
    assert.equal(error.code, "unavailable");
    assert.equal(error.status, 503);
    assert.equal(error.retryAfterMs, 30_000);
    return true;
  });
  free = 65 * MIB;
  assert.equal(disk.refresh()?.low, false);
  assert.deepEqual(changes, [true, false]);

  const share = new DiskSpace("/data", { percent: 2 }, fake);
  free = 19 * MIB;
  assert.equal(share.refresh()?.reserve, 20 * MIB);
  assert.equal(share.refresh()?.low, true);
  const off = new DiskSpace("/data", { bytes: 0 }, fake);
  assert.equal(off.enabled, false);
  assert.equal(off.refresh(), null);
  off.assertRoom();
});

/** A fresh migrated PGlite data directory copied onto `fs`. */
async function pgliteOn(fs: SmallFs): Promise<string> {
  const { handle, dataDir } = await openTestDatabase("pglite");
  await handle.close();
  const target = `${fs.dir}/data`;
  await Deno.mkdir(target);
  const copy = await new Deno.Command("cp", { args: ["-a", `${dataDir}/pg`, `${target}/pg`] })
    .output();
  assert.ok(copy.success, "copying the database onto the small file system");
  return target;
}

async function post(url: string, token: string, body: unknown) {
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    body: await response.json(),
  };
}

const smallFs = smallFsUnavailable();
const PASSWORD = "correct horse battery staple";

testBothDatabases(
  "below the disk reserve sends and blob uploads answer 503 with retry_after_ms, /readyz says why, and both resume when space returns",
  async (kind) => {
    if (smallFs) return console.warn(`skipped: ${smallFs}`);
    const fs = await mountSmallFs(kind === "pglite" ? 160 : 48);
    try {
      const dataDir = kind === "pglite" ? await pgliteOn(fs) : `${fs.dir}/data`;
      await Deno.mkdir(dataDir, { recursive: true });
      const t = await startTestRelay({
        db: kind,
        dataDir,
        env: { SEALPOST_DISK_RESERVE: "24MiB", SEALPOST_ADMIN_PASSWORD: PASSWORD },
      });
      try {
        const alice = await newDevice(t.url, "alice");
        const group = await alice.api.createGroup();
        const cap = newSendCapability();
        await setSendCapability(alice.api, group.id, cap);
        const sendUrl = `${t.url}/v1/groups/${group.id}/messages`;
        const blobBody = { group: group.id, size: 10, sha256: cipher(32) };
        assert.equal((await post(sendUrl, alice.token, { body: cipher(100) })).status, 201);
        // A blob declared while there was room, uploaded after the disk filled.
        const bytes = crypto.getRandomValues(new Uint8Array(10));
        const declared = await alice.api.createBlob(group.id, 10, await sha256(bytes));
        const ws = await RawSocket.authed(t.wsUrl, alice.token);

        await fs.fill(8 * MIB);
        const disk = t.relay.deps.disk!;
        assert.equal(disk.refresh()?.low, true);
        const blob = await post(`${t.url}/v1/blobs`, alice.token, blobBody);
        assert.equal(blob.status, 503);
        assert.equal(blob.body.error.code, "unavailable");
        assert.equal(blob.body.error.retry_after_ms, 30_000);
        assert.equal(blob.retryAfter, "30");
        const upload = await fetch(declared.upload.url, {
          method: "PUT",
          headers: declared.upload.headers,
          body: bytes,
        });
        assert.equal(upload.status, 503, "the relay's own upload URL writes to this disk");
        assert.equal((await upload.json()).error.retry_after_ms, 30_000);
        const sent = await post(sendUrl, alice.token, { body: cipher(100) });
        // The embedded database lives on this disk; server Postgres does not.
        assert.equal(sent.status, kind === "pglite" ? 503 : 201, JSON.stringify(sent.body));
        if (kind === "pglite") assert.equal(sent.body.error.retry_after_ms, 30_000);
        ws.send({ t: "send", ref: "w1", group: group.id, body: cipher(100) });
        const answer = await ws.next((f) => f.ref === "w1");
        if (kind === "pglite") {
          assert.deepEqual(
            [answer.t, answer.code, answer.retry_after_ms],
            ["error", "unavailable", 30_000],
          );
        } else assert.equal(answer.t, "sent");
        // A sealed send stores a message too.
        const sealed = await call(t.url, "POST", `/v1/sealed/groups/${group.id}/messages`, {
          body: { body: cipher(100), cap },
        });
        assert.equal(sealed.status, kind === "pglite" ? 503 : 201, JSON.stringify(sealed.body));
        // Ephemeral sends store nothing and still pass.
        const eph = await post(sendUrl, alice.token, { body: cipher(10), ephemeral: true });
        assert.equal(eph.status, 202);
        const ready = await fetch(`${t.url}/readyz`);
        assert.equal(ready.status, 503);
        assert.match((await ready.json()).reason, /disk nearly full: \d+ MiB free in .*24 MiB/);
        assert.ok(t.logs.some((l) => /disk nearly full: refusing sends/.test(l)));
        assert.match(
          await overviewHtml(t.url),
          /data-warning="disk">disk nearly full: \d+ MiB free/,
        );
        const metrics = await (await fetch(`${t.url}/metrics`)).text();
        assert.match(metrics, /sealpost_data_dir_free_bytes \d+/);

        await fs.unfill();
        // No restart, no admin: the next reading (at most a second later) lets writes through.
        await new Promise((resolve) => setTimeout(resolve, 1_100));
        assert.equal((await post(sendUrl, alice.token, { body: cipher(100) })).status, 201);
        assert.equal((await post(`${t.url}/v1/blobs`, alice.token, blobBody)).status, 201);
        await alice.api.uploadBlob(declared.upload, bytes);
        ws.send({ t: "send", ref: "w2", group: group.id, body: cipher(100) });
        assert.equal((await ws.next((f) => f.ref === "w2")).t, "sent");
        ws.close();
        assert.equal((await fetch(`${t.url}/readyz`)).status, 200);
        assert.ok(t.logs.some((l) => /disk space returned/.test(l)));
        assert.doesNotMatch(await overviewHtml(t.url), /data-warning="disk"/);
      } finally {
        await t.stop();
      }
    } finally {
      await fs.unmount();
    }
  },
);

Deno.test({
  name:
    "server Postgres whose own disk is full answers sends 503 unavailable, not 500, and recovers when space returns",
  ignore: smallFs !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const fs = await mountSmallFs(96);
    let cluster: Awaited<ReturnType<typeof startPostgres>> | null = null;
    try {
      await Deno.mkdir(`${fs.dir}/pg`);
      cluster = await startPostgres({ root: `${fs.dir}/pg` });
      const databaseUrl = await cluster.createDatabase();
      const t = await startTestRelay({
        db: "postgres",
        databaseUrl,
        env: { SEALPOST_RATE_SEND: "off", SEALPOST_DISK_RESERVE: "0" },
      });
      try {
        const alice = await newDevice(t.url, "alice");
        const group = await alice.api.createGroup();
        const cap = newSendCapability();
        await setSendCapability(alice.api, group.id, cap);
        const sendUrl = `${t.url}/v1/groups/${group.id}/messages`;
        await fs.fill(2 * MIB);
        const statuses = new Map<number, number>();
        let refused: {
          status: number;
          body: { error: { code: string; retry_after_ms?: number } };
        } | null = null;
        // 45 KB bodies (incompressible) fill 2 MiB within a few dozen sends; bounded at 400.
        for (let i = 0; i < 400 && !refused; i++) {
          const sent = await post(sendUrl, alice.token, { body: cipher(45_000) });
          statuses.set(sent.status, (statuses.get(sent.status) ?? 0) + 1);
          if (sent.status !== 201) refused = sent;
        }
        assert.ok(refused, `never refused: ${JSON.stringify([...statuses])}`);
        assert.equal(refused.status, 503, JSON.stringify(refused.body));
        assert.equal(refused.body.error.code, "unavailable");
        assert.equal(refused.body.error.retry_after_ms, 30_000, JSON.stringify(refused.body));
        // Other writes on the full disk answer the same, not 500: key packages (~480 KB a call,
        // under the 512 KiB body limit).
        let keys: { status: number; body: { error: { retry_after_ms?: number } } } | null = null;
        for (let i = 0; i < 40 && (keys === null || keys.status === 204); i++) {
          const packages = Array.from({ length: 8 }, () => cipher(45_000));
          const response = await fetch(`${t.url}/v1/devices/me/keys`, {
            method: "PUT",
            headers: { authorization: `Bearer ${alice.token}`, "content-type": "application/json" },
            body: JSON.stringify({ kind: "mls", packages }),
          });
          keys = { status: response.status, body: await response.json().catch(() => null) };
        }
        assert.equal(keys?.status, 503, JSON.stringify(keys?.body));
        assert.equal(keys?.body.error.retry_after_ms, 30_000);
        assert.ok(!t.logs.some((l) => /unhandled error/.test(l)), "no 500 was logged");

        await fs.unfill();
        // Postgres may have restarted itself after the failed write: retry for a bounded while.
        let status = 0;
        for (let i = 0; i < 100 && status !== 201; i++) {
          status = (await post(sendUrl, alice.token, { body: cipher(100) })).status;
          if (status !== 201) await new Promise((resolve) => setTimeout(resolve, 200));
        }
        assert.equal(status, 201);
      } finally {
        await t.stop();
      }
    } finally {
      await cluster?.destroy();
      await fs.unmount();
    }
  },
});

/**
 * Contract tests of the blob store port and the policy above it (relay/blobs/*): the same suite
 * runs against the filesystem store and against a real, signature-checking S3 (Ceph radosgw,
 * see tests/helpers/s3.ts), on PGlite and on Postgres. Uploads and downloads go through plain
 * `fetch`, as a browser would.
 */

import assert from "node:assert/strict";
import { blobDigest, type HttpClient } from "../../../client/mod.ts";
import { cipher, newDevice, type TestDevice } from "../../helpers/accounts.ts";
import { assertRejects, call, type RunningRelay, withRelay } from "../../helpers/http.ts";
import { DB_KINDS, dbUnavailable } from "../../helpers/relay.ts";
import { type S3Server, s3Unavailable, sharedS3 } from "../../helpers/s3.ts";
import { RawSocket } from "../../helpers/ws.ts";

type Backend = "fs" | "s3";
type Ctx = { t: RunningRelay; backend: Backend; s3?: S3Server };

function bytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** Whether the backend holds an object for blob `id`, asked behind the relay's back. */
async function stored(ctx: Ctx, id: string): Promise<boolean> {
  if (ctx.backend === "fs") {
    try {
      await Deno.stat(`${ctx.t.dataDir}/blobs/${id.slice(0, 2)}/${id}`);
      return true;
    } catch {
      return false;
    }
  }
  const s3 = ctx.s3!;
  const head = await s3.client.fetch(`${s3.endpoint}/${s3.bucket}/blobs/${id}`, {
    method: "HEAD",
  });
  await head.body?.cancel();
  return head.status === 200;
}

/** Puts bytes under blob `id` directly into the backend, bypassing every URL check. */
async function plant(ctx: Ctx, id: string, body: Uint8Array<ArrayBuffer>): Promise<void> {
  if (ctx.backend === "fs") {
    const dir = `${ctx.t.dataDir}/blobs/${id.slice(0, 2)}`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(`${dir}/${id}`, body);
    return;
  }
  const s3 = ctx.s3!;
  const put = await s3.client.fetch(`${s3.endpoint}/${s3.bucket}/blobs/${id}`, {
    method: "PUT",
    body,
  });
  await put.body?.cancel();
  assert.equal(put.status, 200);
}

async function upload(
  upload: { url: string; headers: Record<string, string> },
  body: Uint8Array<ArrayBuffer>,
): Promise<number> {
  const response = await fetch(upload.url, { method: "PUT", headers: upload.headers, body });
  await response.body?.cancel();
  return response.status;
}

async function download(api: HttpClient, id: string): Promise<Uint8Array> {
  return await api.downloadBlob(id);
}

async function twoMembers(t: RunningRelay): Promise<[TestDevice, TestDevice, string]> {
  const alice = await newDevice(t.url);
  const bob = await newDevice(t.url);
  const group = await alice.api.createGroup({ members: [bob.account] });
  return [alice, bob, group.id];
}

const behaviours: Record<string, (ctx: Ctx) => Promise<void>> = {
  "a presigned upload and download round-trip through plain fetch": async (ctx) => {
    const [alice, bob, group] = await twoMembers(ctx.t);
    const data = bytes(90_000); // more than one stream chunk
    const created = await alice.api.createBlob(group, data.length, await blobDigest(data));
    assert.match(created.id, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(created.upload.method, "PUT");
    assert.ok(created.expires_at > ctx.t.clock.now());
    assert.equal(await upload(created.upload, data), ctx.backend === "fs" ? 204 : 200);
    assert.ok(await stored(ctx, created.id));

    const redirect = await fetch(`${ctx.t.url}/v1/blobs/${created.id}`, {
      headers: { authorization: `Bearer ${bob.api.token}` },
      redirect: "manual",
    });
    await redirect.body?.cancel();
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get("cache-control"), "no-store");
    const url = await bob.api.blobUrl(created.id);
    const plain = await fetch(url);
    assert.equal(plain.status, 200);
    assert.deepEqual(new Uint8Array(await plain.arrayBuffer()), data);

    const sent = await alice.api.send(group, { body: cipher(), blob: created.id });
    assert.equal(sent.status, 201);
    const page = await bob.api.messages(group);
    assert.deepEqual(page.messages[0].blob, { id: created.id, size: data.length });
    assert.deepEqual(await download(bob.api, created.id), data);
  },

  "a tampered or expired URL is refused by the server": async (ctx) => {
    const [alice, , group] = await twoMembers(ctx.t);
    const data = bytes(1000);
    const created = await alice.api.createBlob(group, data.length, await blobDigest(data));
    const tampered = (url: string) => {
      const u = new URL(url);
      const key = u.searchParams.has("sig") ? "sig" : "X-Amz-Signature";
      const sig = u.searchParams.get(key)!;
      u.searchParams.set(key, (sig[0] === "A" ? "B" : "A") + sig.slice(1));
      return u.toString();
    };
    assert.equal(await upload({ ...created.upload, url: tampered(created.upload.url) }, data), 403);
    // Another object's key under the same signature.
    const other = created.upload.url.replace(created.id, created.id.slice(0, 21) + "x");
    assert.equal(await upload({ ...created.upload, url: other }, data), 403);
    assert.equal(await stored(ctx, created.id), false, "nothing stored by refused uploads");

    const store = ctx.t.relay.blobs.store;
    const past = { now: Date.now() - 2 * 3600_000, ttlMs: 60_000 };
    const stale = await store.uploadUrl(created.id, {
      size: data.length,
      sha256: await blobDigest(data),
    }, past);
    assert.equal(await upload(stale, data), 403);
    assert.equal(await stored(ctx, created.id), false);

    assert.equal(await upload(created.upload, data), ctx.backend === "fs" ? 204 : 200);
    const good = await alice.api.blobUrl(created.id);
    const refused = await fetch(tampered(good));
    await refused.body?.cancel();
    assert.equal(refused.status, 403);
    const expired = await fetch(await store.downloadUrl(created.id, past));
    await expired.body?.cancel();
    assert.equal(expired.status, 403);
    const ok = await fetch(good);
    assert.deepEqual(new Uint8Array(await ok.arrayBuffer()), data);
  },

  "a body of another size or SHA-256 is rejected and never served": async (ctx) => {
    const [alice, bob, group] = await twoMembers(ctx.t);
    const data = bytes(4096);
    const created = await alice.api.createBlob(group, data.length, await blobDigest(data));
    const flipped = data.slice();
    flipped[100] ^= 1;
    const wrongHash = await upload(created.upload, flipped);
    assert.ok(wrongHash === 400 || wrongHash === 403, `wrong hash answered ${wrongHash}`);
    const longer = await upload(created.upload, bytes(4097));
    // The relay's own upload route stops at the declared size: 413 too_large.
    const expected = ctx.backend === "fs" ? [413] : [400, 403];
    assert.ok(expected.includes(longer), `longer body answered ${longer}`);
    const shorter = await upload(created.upload, data.slice(0, 4000));
    assert.ok(shorter === 400 || shorter === 403, `shorter body answered ${shorter}`);
    assert.equal(await stored(ctx, created.id), false, "nothing half-stored");
    await assertRejects(bob.api.blobUrl(created.id), 404, "not_found");
    await assertRejects(
      alice.api.send(group, { body: cipher(), blob: created.id }),
      404,
      "not_found",
    );

    // A store that let a wrong body through (planted behind the relay's back) is caught on use.
    await plant(ctx, created.id, flipped);
    await assertRejects(bob.api.blobUrl(created.id), 404, "not_found");
    assert.equal(await stored(ctx, created.id), false, "the mismatching object is deleted");
    await plant(ctx, created.id, bytes(10));
    await assertRejects(
      alice.api.send(group, { body: cipher(), blob: created.id }),
      404,
      "not_found",
    );
    assert.equal(await stored(ctx, created.id), false);

    // The right body, on the still valid URL, is accepted.
    assert.equal(await upload(created.upload, data), ctx.backend === "fs" ? 204 : 200);
    assert.deepEqual(await download(bob.api, created.id), data);
  },

  "size limit (413 too_large) and per-account quota (413 quota_exceeded)": async (ctx) => {
    const [alice, bob, group] = await twoMembers(ctx.t);
    const sha = await blobDigest(bytes(1));
    const info = await call(ctx.t.url, "GET", "/v1/info");
    assert.equal(info.body.limits.max_account_bytes, 256 * 1024);
    assert.equal(info.body.limits.max_blob_bytes, 100 * 1024);
    await assertRejects(alice.api.createBlob(group, 100 * 1024 + 1, sha), 413, "too_large");
    await alice.api.createBlob(group, 100 * 1024, sha);
    await alice.api.createBlob(group, 100 * 1024, sha);
    await assertRejects(alice.api.createBlob(group, 60 * 1024, sha), 413, "quota_exceeded");
    await alice.api.createBlob(group, 56 * 1024, sha); // exactly at the 256 KiB quota
    await assertRejects(alice.api.createBlob(group, 1, sha), 413, "quota_exceeded");
    await bob.api.createBlob(group, 100 * 1024, sha); // the quota is per account
    const bad = await call(ctx.t.url, "POST", "/v1/blobs", {
      token: alice.api.token!,
      body: { group, size: 10, sha256: "short" },
    });
    assert.equal(bad.status, 400);
    const negative = await call(ctx.t.url, "POST", "/v1/blobs", {
      token: alice.api.token!,
      body: { group, size: -1, sha256: sha },
    });
    assert.equal(negative.status, 400);
  },

  "a non-member gets 404 for every blob call": async (ctx) => {
    const [alice, bob, group] = await twoMembers(ctx.t);
    const eve = await newDevice(ctx.t.url);
    const data = bytes(500);
    const sha = await blobDigest(data);
    await assertRejects(eve.api.createBlob(group, data.length, sha), 404, "not_found");
    const { id } = await alice.api.putBlob(group, data);
    await assertRejects(eve.api.blobUrl(id), 404, "not_found");
    await assertRejects(eve.api.blobUrl("A".repeat(22)), 404, "not_found");
    await assertRejects(eve.api.blobUrl("nope"), 404, "not_found");
    // A blob of one group cannot ride on a message of another.
    const own = await eve.api.createGroup();
    await assertRejects(eve.api.send(own.id, { body: cipher(), blob: id }), 404, "not_found");
    const elsewhere = await alice.api.createGroup();
    await assertRejects(
      alice.api.send(elsewhere.id, { body: cipher(), blob: id }),
      404,
      "not_found",
    );
    await assertRejects(
      alice.api.send(group, { body: cipher(), blob: "A".repeat(22) }),
      404,
      "not_found",
    );
    const unauth = await call(ctx.t.url, "GET", `/v1/blobs/${id}`);
    assert.equal(unauth.status, 401);
    assert.deepEqual(await download(bob.api, id), data);
  },

  "a ttl_s=1 message and its blob are gone from every read path, storage and the backend": async (
    ctx,
  ) => {
    const { t } = ctx;
    const [alice, bob, group] = await twoMembers(t);
    const data = bytes(2000);
    const { id } = await alice.api.putBlob(group, data);
    const keep = await alice.api.send(group, { body: cipher(), client_id: "keep" });
    const live = await RawSocket.authed(t.wsUrl, bob.api.token!);
    live.send({ t: "sub", groups: [group] });
    await live.next((f) => f.t === "synced");
    const sent = await alice.api.send(group, { body: cipher(), blob: id, ttl_s: 1 });
    assert.equal(sent.expires_at, sent.created_at! + 1000);
    const frame = await live.next((f) => f.t === "msg" && f.seq === sent.seq);
    assert.deepEqual(frame.blob, { id, size: data.length }, "live delivery carries the blob");
    live.close();
    assert.equal((await bob.api.inbox()).length, 2);
    t.clock.advance(1001);
    // Never served once expired, even before the sweeper runs.
    const page = await bob.api.messages(group);
    assert.deepEqual(page.messages.map((m) => m.seq), [keep.seq]);
    assert.equal(page.last_seq, sent.seq);
    assert.deepEqual((await bob.api.inbox()).map((m) => m.seq), [keep.seq]);
    const replay = await RawSocket.authed(t.wsUrl, bob.api.token!);
    replay.send({ t: "sub", groups: [group], since: { [group]: 0 } });
    await replay.next((f) => f.t === "synced");
    assert.deepEqual(
      replay.frames.filter((f) => f.t === "msg").map((f) => f.seq),
      [keep.seq],
      "replay steps over the expired message",
    );
    replay.close();
    await assertRejects(bob.api.blobUrl(id), 404, "not_found");
    assert.ok(await stored(ctx, id));

    const report = await t.relay.sweeper.runOnce();
    assert.ok(report);
    assert.ok(report.expiredMessages >= 1);
    const rows = await t.database.db.selectFrom("messages").select("seq")
      .where("group_id", "=", group).execute();
    assert.deepEqual(rows.map((r) => r.seq), [keep.seq], "gone from storage");
    const blobRow = await t.database.db.selectFrom("blobs").select("id").where("id", "=", id)
      .executeTakeFirst();
    assert.equal(blobRow, undefined);
    assert.equal(await stored(ctx, id), false, "gone from the backend");
  },

  "a blob lives as long as its longest-lived message": async (ctx) => {
    const { t } = ctx;
    const [alice, bob, group] = await twoMembers(t);
    const { id } = await alice.api.putBlob(group, bytes(300));
    await alice.api.send(group, { body: cipher(), blob: id, ttl_s: 10 });
    await bob.api.send(group, { body: cipher(), blob: id, ttl_s: 7200 });
    await alice.api.send(group, { body: cipher(), blob: id, ttl_s: 5 });
    t.clock.advance(3600_000);
    await t.relay.sweeper.runOnce();
    assert.ok(await stored(ctx, id), "kept while a message refers to it");
    assert.equal((await bob.api.blobUrl(id)).length > 0, true);
    t.clock.advance(3601_000);
    await t.relay.sweeper.runOnce();
    assert.equal(await stored(ctx, id), false);
  },

  "never-referenced blobs are purged after an hour; a deleted group's blobs with it": async (
    ctx,
  ) => {
    const { t } = ctx;
    const [alice, , group] = await twoMembers(t);
    const orphan = await alice.api.putBlob(group, bytes(100));
    const second = await alice.api.createGroup();
    const doomed = await alice.api.putBlob(second.id, bytes(100));
    await alice.api.send(second.id, { body: cipher(), blob: doomed.id });
    t.clock.advance(59 * 60_000);
    const early = await t.relay.sweeper.runOnce({ dryRun: true });
    assert.equal(early?.blobsDeleted, 0);
    await t.relay.sweeper.runOnce();
    assert.ok(await stored(ctx, orphan.id));

    await alice.api.deleteGroup(second.id);
    const dry = await t.relay.sweeper.runOnce({ dryRun: true });
    assert.equal(dry?.groupBlobs, 1);
    assert.ok(await stored(ctx, doomed.id), "a dry run deletes nothing");
    const report = await t.relay.sweeper.runOnce();
    assert.equal(report?.groupBlobs, 1);
    assert.equal(await stored(ctx, doomed.id), false);
    assert.ok(await stored(ctx, orphan.id));

    t.clock.advance(2 * 60_000);
    const later = await t.relay.sweeper.runOnce();
    assert.ok((later?.orphanBlobs ?? 0) >= 1);
    assert.equal(await stored(ctx, orphan.id), false);
    await assertRejects(
      alice.api.send(group, { body: cipher(), blob: orphan.id }),
      404,
      "not_found",
    );
  },
};

const ENV = { SEALPOST_MAX_BLOB_BYTES: "100KiB", SEALPOST_MAX_ACCOUNT_BYTES: "256KiB" };

for (const backend of ["fs", "s3"] as Backend[]) {
  for (const db of DB_KINDS) {
    const why = dbUnavailable(db) ?? (backend === "s3" ? s3Unavailable() : null);
    const name = `blob store contract [${backend}, ${db}]`;
    if (why) console.warn(`skipping "${name}": ${why}`);
    Deno.test({
      name,
      ignore: why !== null,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async (test) => {
        const s3 = backend === "s3" ? await sharedS3() : undefined;
        await withRelay(db, { env: { ...ENV, ...s3?.env } }, async (t) => {
          for (const [behaviour, fn] of Object.entries(behaviours)) {
            await test.step(behaviour, () => fn({ t, backend, s3 }));
          }
        });
      },
    });
  }
}

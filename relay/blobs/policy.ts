/**
 * @module
 * The one policy layer above every blob store (PROTOCOL.md "Blobs"): ids, the size limit
 * (`413 too_large`), the per-account quota (`413 quota_exceeded`), membership (a non-member gets
 * `404`, as for a blob that does not exist), the declared size and SHA-256 (a body that differs
 * is rejected and never served), and lifetimes: a blob nobody referenced is purged an hour after
 * it was declared; a referenced one lives as long as its longest-lived message (group commit's
 * `sealpost_commit`, migration 0007, extends `expires_at` in the committing transaction); a
 * deleted group's blobs go with it.
 */

import { createHash } from "node:crypto";
import { sql } from "kysely";
import type { Principal } from "../authenticate.ts";
import type { Deps } from "../deps.ts";
import { randomId, toBase64Url } from "../base/encoding.ts";
import { invalid, notFound, RelayError } from "../errors.ts";
import { roleIn } from "../accounts/groups.ts";
import { BlobMismatchError, type BlobStore, isLocal, type SignedRequest } from "./mod.ts";

/** How long an upload URL stays valid; well inside the orphan grace. */
export const UPLOAD_TTL_MS = 15 * 60_000;
/** How long a download URL stays valid. */
export const DOWNLOAD_TTL_MS = 5 * 60_000;
/** A blob no message references is purged this long after it was declared. */
export const ORPHAN_GRACE_MS = 60 * 60_000;
/** First key of the advisory locks that serialize quota checks per account. */
const QUOTA_LOCK = 0x5EA1;
/** Blobs deleted per transaction by the sweeper, and object deletions in flight at once. */
const PURGE_BATCH = 100;
const DELETE_CONCURRENCY = 16;

/** `POST /v1/blobs` as the policy receives it. */
export type CreateBlob = { group: string; size: number; sha256: string };

/** The answer to `POST /v1/blobs`. */
export type CreatedBlob = { id: string; upload: SignedRequest; expires_at: number };

/** What one purge removed (or, dry, would remove). */
export type BlobPurge = {
  blobs: number;
  bytes: number;
  expired: number;
  orphan: number;
  group_deleted: number;
};

type BlobRow = {
  id: string;
  group_id: string | null;
  size: number;
  sha256: string;
  uploaded_at: number | null;
  expires_at: number | null;
};

/** SHA-256 (base64url) of a stream, read chunk by chunk. */
export async function sha256Stream(stream: ReadableStream<Uint8Array>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk);
  return toBase64Url(new Uint8Array(hash.digest()));
}

/** Blob rules, over one {@link BlobStore}. */
export class BlobPolicy {
  constructor(private readonly deps: Deps, readonly store: BlobStore) {}

  /** Declares a blob and returns where to upload it. */
  async create(caller: Principal, body: CreateBlob): Promise<CreatedBlob> {
    const { config, clock, db, metrics } = this.deps;
    if (body.size > config.maxBlobBytes) {
      throw new RelayError(
        "too_large",
        `The blob is ${body.size} bytes; the limit is ${config.maxBlobBytes}`,
      );
    }
    await roleIn(this.deps, body.group, caller.account);
    if (this.store.kind === "fs") this.deps.disk?.assertRoom();
    const id = randomId(16);
    const now = clock.now();
    await db.transaction().execute(async (tx) => {
      // Concurrent declarations by one account take turns, so together they respect the quota.
      await sql`select pg_advisory_xact_lock(${QUOTA_LOCK}, hashtext(${caller.account}))`
        .execute(tx);
      const used = await tx.selectFrom("blobs")
        .select(sql<number>`coalesce(sum(size), 0)::bigint`.as("bytes"))
        .where("account_id", "=", caller.account).executeTakeFirstOrThrow();
      if (Number(used.bytes) + body.size > config.maxAccountBytes) {
        throw new RelayError(
          "quota_exceeded",
          `The account stores ${used.bytes} blob bytes; ${body.size} more would pass its quota of ${config.maxAccountBytes}`,
        );
      }
      await tx.insertInto("blobs").values({
        id,
        group_id: body.group,
        account_id: caller.account,
        size: body.size,
        sha256: body.sha256,
        created_at: now,
        uploaded_at: null,
        referenced_at: null,
        expires_at: now + ORPHAN_GRACE_MS,
      }).execute();
    });
    const window = { now, ttlMs: UPLOAD_TTL_MS };
    const upload = await this.store.uploadUrl(id, body, window);
    metrics.blobsCreated.inc();
    return { id, upload, expires_at: now + UPLOAD_TTL_MS };
  }

  async #row(id: string): Promise<BlobRow | undefined> {
    if (!/^[A-Za-z0-9_-]{22}$/.test(id)) return undefined;
    return await this.deps.db.selectFrom("blobs")
      .select(["id", "group_id", "size", "sha256", "uploaded_at", "expires_at"])
      .where("id", "=", id).executeTakeFirst();
  }

  #live(row: BlobRow | undefined): row is BlobRow & { group_id: string } {
    const now = this.deps.clock.now();
    return !!row && row.group_id !== null && (row.expires_at === null || row.expires_at > now);
  }

  /**
   * Makes sure the stored object is the declared one: true once checked. A store that does not
   * vouch for the digest has the object hashed here, once. A mismatching object is deleted, so
   * it is never served; the client may upload again while its URL is valid.
   */
  async #ensureUploaded(row: BlobRow): Promise<void> {
    if (row.uploaded_at !== null) return;
    const info = await this.store.stat(row.id);
    if (!info) throw notFound("The blob has not been uploaded");
    let ok = info.size === row.size;
    if (ok) {
      let digest = info.sha256;
      if (digest === null) {
        const stream = await this.store.read(row.id);
        digest = stream ? await sha256Stream(stream) : null;
      }
      ok = digest === row.sha256;
    }
    if (!ok) {
      await this.store.delete(row.id);
      this.deps.metrics.blobUploads.inc({ result: "mismatch" });
      throw notFound("The uploaded blob did not match its declared size and SHA-256");
    }
    await this.#markUploaded(row.id);
  }

  async #markUploaded(id: string): Promise<boolean> {
    const result = await this.deps.db.updateTable("blobs")
      .set({ uploaded_at: this.deps.clock.now() })
      .where("id", "=", id).where("uploaded_at", "is", null).executeTakeFirst();
    this.deps.metrics.blobUploads.inc({ result: "ok" });
    return Number(result.numUpdatedRows) > 0;
  }

  /**
   * Checks that `id` may ride on a message to `group` by `caller`: an uploaded, unexpired blob of
   * that group (else `404`). Returns what the message carries.
   */
  async attach(
    caller: Principal,
    id: string,
    group: string,
  ): Promise<{ id: string; size: number }> {
    await roleIn(this.deps, group, caller.account);
    const row = await this.#row(id);
    if (!this.#live(row) || row.group_id !== group) throw notFound("No such blob");
    await this.#ensureUploaded(row);
    return { id: row.id, size: row.size };
  }

  /** A short-lived download URL for a member of the blob's group (else `404`). */
  async downloadUrl(caller: Principal, id: string): Promise<string> {
    const row = await this.#row(id);
    if (!this.#live(row)) throw notFound("No such blob");
    const member = await this.deps.db.selectFrom("group_members").select("group_id")
      .where("group_id", "=", row.group_id).where("account_id", "=", caller.account)
      .executeTakeFirst();
    if (!member) throw notFound("No such blob");
    await this.#ensureUploaded(row);
    return await this.store.downloadUrl(row.id, {
      now: this.deps.clock.now(),
      ttlMs: DOWNLOAD_TTL_MS,
    });
  }

  /** True when this store's URLs point at the relay (the filesystem store). */
  get servesLocally(): boolean {
    return isLocal(this.store);
  }

  async #verifyLocal(method: "PUT" | "GET", id: string, exp: string, sig: string) {
    const store = this.store;
    const expMs = /^\d{1,16}$/.test(exp) ? Number(exp) : NaN;
    if (
      !isLocal(store) ||
      !(await store.verify(method, id, expMs, sig, this.deps.clock.now()))
    ) {
      throw new RelayError(
        "forbidden",
        "The URL is not valid: its signature is wrong or it expired",
      );
    }
    return store;
  }

  /** Takes an upload through the relay's own signed URL (filesystem store). */
  async receive(
    id: string,
    exp: string,
    sig: string,
    body: ReadableStream<Uint8Array> | null,
    contentLength?: number,
  ) {
    const store = await this.#verifyLocal("PUT", id, exp, sig);
    const row = await this.#row(id);
    if (!this.#live(row)) throw notFound("No such blob");
    if (row.uploaded_at !== null) throw new RelayError("conflict", "The blob is already uploaded");
    if (contentLength !== undefined && contentLength > row.size) {
      // Refused before a byte of the body is read.
      this.deps.metrics.blobUploads.inc({ result: "mismatch" });
      throw new RelayError("too_large", `The body is longer than the declared ${row.size} bytes`);
    }
    this.deps.disk?.assertRoom();
    try {
      await store.write(id, body ?? new Blob([]).stream(), row);
    } catch (error) {
      if (error instanceof BlobMismatchError) {
        this.deps.metrics.blobUploads.inc({ result: "mismatch" });
        if (error.tooLarge) throw new RelayError("too_large", error.message);
        throw invalid(error.message);
      }
      throw error;
    }
    if (!(await this.#markUploaded(id)) && !this.#live(await this.#row(id))) {
      await store.delete(id); // purged while the body was arriving
      throw notFound("No such blob");
    }
  }

  /** Opens a blob for a download through the relay's own signed URL (filesystem store). */
  async open(id: string, exp: string, sig: string) {
    const store = await this.#verifyLocal("GET", id, exp, sig);
    const row = await this.#row(id);
    if (!this.#live(row) || row.uploaded_at === null) throw notFound("No such blob");
    const stream = await store.read(id);
    if (!stream) throw notFound("No such blob");
    return { stream, size: row.size };
  }

  /**
   * Deletes expired blobs (their last message expired, or never referenced within the grace)
   * and the blobs of deleted groups, rows and objects together, in bounded batches. With
   * `dryRun` it only counts.
   */
  async purge(now: number, options: { dryRun?: boolean } = {}): Promise<BlobPurge> {
    const { db, metrics, log } = this.deps;
    const report: BlobPurge = { blobs: 0, bytes: 0, expired: 0, orphan: 0, group_deleted: 0 };
    const reasons = sql<string>`case when group_id is null then 'group_deleted'
      when referenced_at is null then 'orphan' else 'expired' end`;
    if (options.dryRun) {
      const rows = await db.selectFrom("blobs")
        .select([reasons.as("reason"), sql<number>`count(*)::int`.as("n")])
        .select(sql<number>`coalesce(sum(size), 0)::bigint`.as("bytes"))
        .where((eb) => eb.or([eb("expires_at", "<=", now), eb("group_id", "is", null)]))
        .groupBy("reason").execute();
      for (const row of rows) {
        report[row.reason as "expired"] += row.n;
        report.blobs += row.n;
        report.bytes += Number(row.bytes);
      }
      return report;
    }
    for (;;) {
      const due = await db.selectFrom("blobs").select("id")
        .where("expires_at", "<=", now).orderBy("expires_at").limit(PURGE_BATCH).execute();
      const orphaned = await db.selectFrom("blobs").select("id")
        .where("group_id", "is", null).limit(PURGE_BATCH).execute();
      const ids = [...new Set([...due, ...orphaned].map((r) => r.id))];
      if (ids.length === 0) break;
      const gone = await db.transaction().execute(async (tx) => {
        // The condition is checked again under the row locks: a message committed meanwhile
        // may have extended a blob's life.
        const deleted = await tx.deleteFrom("blobs").where("id", "in", ids)
          .where((eb) => eb.or([eb("expires_at", "<=", now), eb("group_id", "is", null)]))
          .returning(["id", "size", reasons.as("reason")]).execute();
        for (let i = 0; i < deleted.length; i += DELETE_CONCURRENCY) {
          await Promise.all(
            deleted.slice(i, i + DELETE_CONCURRENCY).map((b) => this.store.delete(b.id)),
          );
        }
        return deleted;
      });
      for (const blob of gone) {
        report.blobs++;
        report.bytes += blob.size;
        report[blob.reason as "expired"]++;
        metrics.blobsDeleted.inc({ reason: blob.reason });
        metrics.blobBytesDeleted.inc(blob.size);
      }
      if (gone.length === 0) {
        log.warn("blob purge made no progress", { candidates: ids.length });
        break;
      }
      if (due.length < PURGE_BATCH && orphaned.length < PURGE_BATCH) break;
    }
    return report;
  }

  /** Uploaded blobs and their bytes (for the storage gauges). */
  async usage(): Promise<{ blobs: number; bytes: number }> {
    const row = await this.deps.db.selectFrom("blobs")
      .select([
        sql<number>`count(*)::int`.as("blobs"),
        sql<number>`coalesce(sum(size), 0)::bigint`.as("bytes"),
      ])
      .where("uploaded_at", "is not", null).executeTakeFirstOrThrow();
    return { blobs: row.blobs, bytes: Number(row.bytes) };
  }
}

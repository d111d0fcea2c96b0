/**
 * @module
 * `sealpost import` / `sealpost restore`: loads an archive written by `export`/`backup` into an
 * empty database and blob store — embedded or server, filesystem or S3, whichever the
 * configuration names — then verifies it: every table's row count must equal the archive's, and
 * every blob's size and SHA-256 are checked as it is written. Rows go in one transaction, so a
 * failed import leaves the database as empty as it found it.
 */

import { createHash } from "node:crypto";
import { type Kysely, sql } from "kysely";
import {
  type ArchiveHeader,
  ArchiveReader,
  type ArchiveTrailer,
  decodeRow,
  Progress,
} from "./format.ts";
import { type BlobStore, isLocal } from "../blobs/mod.ts";
import type { Db } from "../store/database.ts";
import { fromBase64Url, toBase64Url } from "../base/encoding.ts";
import { MIGRATIONS } from "../../migrations/mod.ts";
import type { Database } from "../store/schema.ts";
import { archivedTables } from "./export.ts";

/** What an import did. */
export type ImportReport = {
  header: ArchiveHeader;
  counts: Record<string, number>;
  blobs: number;
  blob_bytes: number;
};

/** Options of an import. */
export type ImportOptions = {
  db: Db;
  blobs: BlobStore;
  input: ReadableStream<Uint8Array>;
  quiet?: boolean;
};

const ident = (name: string) => sql.raw(`"${name.replace(/"/g, '""')}"`);

/** Throws unless the database holds no accounts, devices, groups or messages. */
export async function assertEmpty(db: Kysely<Database>): Promise<void> {
  for (const table of ["accounts", "devices", "groups", "messages"] as const) {
    const row = await sql<{ n: number }>`select count(*)::int as n from ${ident(table)}`.execute(
      db,
    );
    if (row.rows[0].n > 0) {
      throw new Error(
        `Cannot import into this database: it already holds ${table} (import needs an empty database; use a new one)`,
      );
    }
  }
}

/**
 * Reads the archive, loads its rows and blobs, and verifies the result.
 *
 * @example
 * ```ts
 * const file = await Deno.open("backup.sealpost");
 * const report = await importArchive({ db, blobs, input: file.readable });
 * ```
 */
export async function importArchive(options: ImportOptions): Promise<ImportReport> {
  const { db, blobs } = options;
  const progress = new Progress(options.quiet);
  const reader = new ArchiveReader(options.input);
  try {
    const header = await reader.next();
    if (!header || !("kind" in header) || header.kind !== "sealpost-archive") {
      throw new Error("Cannot import: this file is not a Sealpost archive");
    }
    if (header.version !== 1) {
      throw new Error(`Cannot import: archive version ${header.version} is unknown`);
    }
    const unknown = header.migrations.filter((m) => !(m in MIGRATIONS));
    if (unknown.length > 0) {
      throw new Error(
        `Cannot import: the archive comes from a newer Sealpost (unknown migration ${
          unknown.join(", ")
        })`,
      );
    }
    await assertEmpty(db);
    const tables = await archivedTables(db);
    const known = new Set(tables.map((t) => t.name));
    const counts: Record<string, number> = {};
    let next = await reader.next();

    await db.transaction().execute(async (tx) => {
      // Start from nothing in every archived table (settings or an admin password written at
      // start-up would otherwise collide with the archive's).
      for (const table of [...tables].reverse()) {
        await sql`delete from ${ident(table.name)}`.execute(tx);
      }
      while (next && "table" in next) {
        const record = next;
        if (!known.has(record.table)) {
          throw new Error(`Cannot import: unknown table ${record.table}`);
        }
        const rows = record.rows.map(decodeRow);
        if (rows.length > 0) {
          await (tx as Kysely<Record<string, Record<string, unknown>>>).insertInto(record.table)
            .values(rows).execute();
        }
        counts[record.table] = (counts[record.table] ?? 0) + rows.length;
        progress.update(`table ${record.table}`, counts[record.table], counts[record.table]);
        next = await reader.next();
      }
      // Serial columns continue after the imported ids.
      const serials = await sql<{ table: string; column: string }>`
        select table_name as table, column_name as column from information_schema.columns
        where table_schema = 'public' and column_default like 'nextval(%'`.execute(tx);
      for (const { table, column } of serials.rows) {
        if (!known.has(table)) continue;
        await sql`select setval(pg_get_serial_sequence(${table}, ${column}),
          coalesce((select max(${ident(column)}) from ${ident(table)}), 0) + 1, false)`.execute(tx);
      }
    });
    progress.done();

    let blobCount = 0;
    let blobBytes = 0;
    while (next && "blob" in next) {
      const id = next.blob;
      const parts: Uint8Array[] = [];
      const hash = createHash("sha256");
      let size = 0;
      while (next && "blob" in next && next.blob === id) {
        const data = fromBase64Url(next.data);
        if (!data) throw new Error(`Cannot import blob ${id}: a part is corrupt`);
        hash.update(data);
        parts.push(data);
        size += data.length;
        next = await reader.next();
      }
      if (!next || !("blob_end" in next) || next.blob_end !== id) {
        throw new Error(`Cannot import blob ${id}: the archive ends in the middle of it`);
      }
      const sha256 = toBase64Url(new Uint8Array(hash.digest()));
      if (size !== next.size || sha256 !== next.sha256) {
        throw new Error(
          `Cannot import blob ${id}: its bytes do not match the archived size and SHA-256`,
        );
      }
      await putBlob(blobs, id, parts, { size, sha256 });
      blobCount++;
      blobBytes += size;
      progress.update("blobs", blobCount, blobCount);
      next = await reader.next();
    }
    progress.done();

    if (!next || !("end" in next)) {
      throw new Error("Cannot import: the archive has no trailer (truncated file)");
    }
    const trailer = next as ArchiveTrailer;
    await verify(db, trailer, counts, blobCount);
    return { header, counts, blobs: blobCount, blob_bytes: blobBytes };
  } finally {
    await reader.cancel();
  }
}

/** Stores one blob in the target store, checked against its size and digest. */
async function putBlob(
  store: BlobStore,
  id: string,
  parts: Uint8Array[],
  expect: { size: number; sha256: string },
): Promise<void> {
  if (isLocal(store)) {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const part of parts) controller.enqueue(part);
        controller.close();
      },
    });
    await store.write(id, body, expect);
    return;
  }
  // S3-compatible stores take the bytes on their own presigned URL, which binds size and digest.
  const upload = await store.uploadUrl(id, expect, { now: Date.now(), ttlMs: 15 * 60_000 });
  const body = new Uint8Array(expect.size);
  let offset = 0;
  for (const part of parts) {
    body.set(part, offset);
    offset += part.length;
  }
  const res = await fetch(upload.url, { method: upload.method, headers: upload.headers, body });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`Cannot import blob ${id}: the blob store answered ${res.status}`);
}

/** Compares the database with the archive's trailer. */
async function verify(
  db: Db,
  trailer: ArchiveTrailer,
  counts: Record<string, number>,
  blobs: number,
): Promise<void> {
  for (const [table, expected] of Object.entries(trailer.counts)) {
    const loaded = counts[table] ?? 0;
    const row = await sql<{ n: number }>`select count(*)::int as n from ${ident(table)}`.execute(
      db,
    );
    if (loaded !== expected || row.rows[0].n !== expected) {
      throw new Error(
        `Verification failed: table ${table} should hold ${expected} rows, holds ${row.rows[0].n}`,
      );
    }
  }
  if (blobs !== trailer.blobs) {
    throw new Error(`Verification failed: ${trailer.blobs} blobs archived, ${blobs} imported`);
  }
}

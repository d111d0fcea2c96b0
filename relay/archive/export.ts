/**
 * @module
 * `sealpost export` / `sealpost backup`: writes every lasting table (in one consistent snapshot)
 * and every uploaded blob to an archive (see `archive.ts`). On server Postgres the snapshot is a
 * `REPEATABLE READ` transaction, so an export taken while sends are running is consistent; the
 * embedded database is single-process, so export it while the relay is stopped.
 */

import { createHash } from "node:crypto";
import { type Kysely, type RawBuilder, sql } from "kysely";
import {
  type ArchiveTrailer,
  ArchiveWriter,
  BLOB_PART_BYTES,
  encodeRow,
  Progress,
  recordsOf,
  ROWS_PER_RECORD,
  TRANSIENT_TABLES,
} from "./format.ts";
import type { BlobStore } from "../blobs/mod.ts";
import type { Db } from "../store/database.ts";
import { concatBytes, toBase64Url } from "../base/encoding.ts";
import { appliedMigrations } from "../store/migrate.ts";
import type { Database } from "../store/schema.ts";
import { VERSION } from "../base/version.ts";

/** A table to archive with its primary key, in foreign-key order. */
export type TableInfo = { name: string; key: string[] };

/** Lasting tables of the public schema, parents before children, with their primary keys. */
export async function archivedTables(db: Kysely<Database>): Promise<TableInfo[]> {
  const tables = await sql<{ name: string }>`
    select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind = 'r' order by c.relname`.execute(db);
  const names = tables.rows.map((r) => r.name).filter((n) => !TRANSIENT_TABLES.has(n));
  const fks = await sql<{ child: string; parent: string }>`
    select cl.relname as child, pl.relname as parent from pg_constraint c
    join pg_class cl on cl.oid = c.conrelid join pg_class pl on pl.oid = c.confrelid
    where c.contype = 'f'`.execute(db);
  const ordered: string[] = [];
  const visit = (name: string, path: Set<string>) => {
    if (ordered.includes(name) || path.has(name)) return;
    path.add(name);
    for (const fk of fks.rows) if (fk.child === name && fk.parent !== name) visit(fk.parent, path);
    if (names.includes(name)) ordered.push(name);
  };
  for (const name of names) visit(name, new Set());
  const out: TableInfo[] = [];
  for (const name of ordered) {
    const key = await sql<{ column: string }>`
      select a.attname as column from pg_index i
      join lateral unnest(i.indkey) with ordinality as k(attnum, pos) on true
      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
      where i.indrelid = ${name}::regclass and i.indisprimary order by k.pos`.execute(db);
    if (key.rows.length === 0) {
      throw new Error(`Cannot archive table ${name}: it has no primary key`);
    }
    out.push({ name, key: key.rows.map((r) => r.column) });
  }
  return out;
}

const ident = (name: string) => sql.raw(`"${name.replace(/"/g, '""')}"`);

/** Options of an export. */
export type ExportOptions = {
  db: Db;
  dbKind: string;
  blobs: BlobStore;
  out: WritableStream<Uint8Array>;
  now: number;
  quiet?: boolean;
  /**
   * Whether blob bytes go into the archive. A backup of an S3 install leaves them out: the
   * bucket keeps them (protect it with versioning or replication); a move always takes them.
   */
  includeBlobs?: boolean;
};

/**
 * Writes the archive and returns its trailer (counts, blobs, bytes).
 *
 * @example
 * ```ts
 * const file = await Deno.create("backup.sealpost");
 * const trailer = await exportArchive({ db, dbKind: "postgres", blobs, out: file.writable, now: Date.now() });
 * ```
 */
export async function exportArchive(options: ExportOptions): Promise<ArchiveTrailer> {
  const { db, blobs } = options;
  const progress = new Progress(options.quiet);
  const writer = new ArchiveWriter(options.out);
  const counts: Record<string, number> = {};
  let blobList: { id: string; size: number; sha256: string }[] = [];
  try {
    await db.transaction().setIsolationLevel("repeatable read").execute(async (tx) => {
      await writer.write({
        kind: "sealpost-archive",
        version: 1,
        created_at: options.now,
        migrations: await appliedMigrations(tx),
        source: {
          database: options.dbKind,
          blobs: `${blobs.kind} ${blobs.location}`,
          sealpost: VERSION,
        },
      });
      for (const table of await archivedTables(tx)) {
        const total = Number(
          (await sql<{ n: number }>`select count(*)::int as n from ${ident(table.name)}`.execute(
            tx,
          )).rows[0].n,
        );
        let done = 0;
        let last: unknown[] | null = null;
        const keyList = sql.join(table.key.map(ident));
        while (true) {
          const where: RawBuilder<unknown> = last
            ? sql`where (${keyList}) > (${sql.join(last.map((v) => sql`${v}`))})`
            : sql``;
          const page: { rows: Record<string, unknown>[] } = await sql<Record<string, unknown>>`
            select * from ${
            ident(table.name)
          } ${where} order by ${keyList} limit ${ROWS_PER_RECORD}`
            .execute(tx);
          if (page.rows.length === 0) break;
          for (const record of recordsOf(table.name, page.rows.map(encodeRow))) {
            await writer.write(record);
          }
          done += page.rows.length;
          const lastRow = page.rows[page.rows.length - 1];
          last = table.key.map((k) => lastRow[k]);
          progress.update(`table ${table.name}`, done, total);
          if (page.rows.length < ROWS_PER_RECORD) break;
        }
        progress.update(`table ${table.name}`, done, total, true);
        progress.done();
        counts[table.name] = done;
      }
      if (counts.blobs !== undefined && options.includeBlobs !== false) {
        blobList = (await sql<{ id: string; size: number; sha256: string }>`
          select id, size, sha256 from blobs where uploaded_at is not null order by id`.execute(tx))
          .rows;
      }
    });

    let blobBytes = 0;
    const missing: string[] = [];
    for (const [i, blob] of blobList.entries()) {
      const stream = await blobs.read(blob.id);
      if (!stream) {
        missing.push(blob.id);
        continue;
      }
      const hash = await streamBlob(writer, blob.id, stream);
      if (hash.size !== blob.size || hash.sha256 !== blob.sha256) {
        throw new Error(
          `Cannot export blob ${blob.id}: the stored bytes do not match its size and SHA-256`,
        );
      }
      await writer.write({ blob_end: blob.id, size: hash.size, sha256: hash.sha256 });
      blobBytes += hash.size;
      progress.update("blobs", i + 1, blobList.length);
    }
    if (blobList.length > 0) {
      progress.update("blobs", blobList.length, blobList.length, true);
      progress.done();
    }
    const trailer: ArchiveTrailer = {
      end: true,
      counts,
      blobs: blobList.length - missing.length,
      blob_bytes: blobBytes,
      missing_blobs: missing,
    };
    await writer.write(trailer);
    await writer.close();
    return trailer;
  } catch (error) {
    await writer.close().catch(() => {});
    throw error;
  }
}

/** Writes a blob's bytes in parts, hashing as it goes (never holding the whole blob). */
async function streamBlob(
  writer: ArchiveWriter,
  id: string,
  stream: ReadableStream<Uint8Array>,
): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let part = 0;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const data = concatBytes(...pending);
    await writer.write({ blob: id, part: part++, data: toBase64Url(data) });
    pending = [];
    pendingBytes = 0;
  };
  for await (const chunk of stream) {
    hash.update(chunk);
    pending.push(chunk);
    pendingBytes += chunk.length;
    size += chunk.length;
    if (pendingBytes >= BLOB_PART_BYTES) await flush();
  }
  await flush();
  return { size, sha256: toBase64Url(new Uint8Array(hash.digest())) };
}

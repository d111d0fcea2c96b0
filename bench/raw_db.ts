/**
 * @module
 * Database ceilings, measured with the drivers directly (no relay): rows per second into a
 * table shaped like `messages` (same columns, primary key and unique index) by multi-row
 * INSERT in batches (as Kysely writes it: VALUES with a parameter per cell), by INSERT … SELECT
 * FROM unnest(one array per column), by COPY, and by single-row autocommit INSERTs; the same for PGlite in this
 * process. Also the read ceiling for catch-up: paging 100k rows out in pages of 500.
 */

import { PGlite } from "@electric-sql/pglite";
import postgres from "postgres";
import { round } from "./stats.ts";

const TABLE = `
  create table if not exists raw_messages (
    group_id text not null,
    seq bigint not null,
    sender_account text not null,
    sender_device text not null,
    client_id text not null,
    body bytea not null,
    blob_id text,
    to_devices text[],
    created_at bigint not null,
    expires_at bigint,
    primary key (group_id, seq)
  )`;
const INDEX =
  `create unique index if not exists raw_messages_client_id_idx on raw_messages (group_id, sender_device, client_id)`;
const COLUMNS =
  "group_id, seq, sender_account, sender_device, client_id, body, created_at, expires_at";

type Row = [string, number, string, string, string, Uint8Array, number, number];

/** A stream of message-shaped rows across 100 groups. */
class Rows {
  #seq = 0;
  readonly #groups = Array.from({ length: 100 }, (_, i) => `g${String(i).padStart(21, "0")}`);
  readonly #body = crypto.getRandomValues(new Uint8Array(66));
  readonly #sender = "s".repeat(43);

  next(): Row {
    const n = this.#seq++;
    const now = Date.now();
    return [
      this.#groups[n % 100],
      n,
      this.#sender,
      this.#sender,
      `c${n}`,
      this.#body,
      now,
      now + 86_400_000,
    ];
  }
}

/** Rates measured against one database. */
export type InsertCeiling = {
  multi_row_insert_rows_s: number;
  multi_row_batch: number;
  /** The same batches as one INSERT … SELECT FROM unnest(8 arrays). */
  unnest_insert_rows_s?: number;
  copy_rows_s?: number;
  single_row_autocommit_rows_s: number;
};

/** Postgres ceilings through postgres.js on database `url` (a fresh, empty database). */
export async function postgresCeiling(url: string, rows = 100_000): Promise<InsertCeiling> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(TABLE);
    await sql.unsafe(INDEX);
    const source = new Rows();
    const batch = 1000;

    const multiSql = `insert into raw_messages (${COLUMNS}) values ${placeholders(batch)}`;
    let t0 = performance.now();
    for (let done = 0; done < rows; done += batch) {
      const params: Row[number][] = [];
      for (let i = 0; i < batch; i++) params.push(...source.next());
      await sql.unsafe(multiSql, params as never[]);
    }
    const multi = rows / ((performance.now() - t0) / 1000);

    // The same rows as 8 array parameters (one per column) instead of 8,000 scalars.
    const unnestSql = `insert into raw_messages (${COLUMNS})
      select g, s, a, d, c, decode(b, 'hex'), t, e
      from unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                  $7::bigint[], $8::bigint[]) as u(g, s, a, d, c, b, t, e)`;
    const hexBody = hex(source.next()[5]).join("");
    t0 = performance.now();
    for (let done = 0; done < rows; done += batch) {
      const columns: unknown[][] = Array.from({ length: 8 }, () => []);
      for (let i = 0; i < batch; i++) {
        const r = source.next();
        for (let c = 0; c < 8; c++) columns[c].push(c === 5 ? hexBody : r[c]);
      }
      await sql.unsafe(unnestSql, columns as never[]);
    }
    const unnest = rows / ((performance.now() - t0) / 1000);

    t0 = performance.now();
    const writable = await sql.unsafe(`copy raw_messages (${COLUMNS}) from stdin`).writable();
    const bodyHex = `\\\\x${hex(source.next()[5]).join("")}`;
    let chunk = "";
    for (let i = 0; i < rows; i++) {
      const r = source.next();
      chunk += `${r[0]}\t${r[1]}\t${r[2]}\t${r[3]}\t${r[4]}\t${bodyHex}\t${r[6]}\t${r[7]}\n`;
      if (chunk.length > 256 * 1024) {
        if (!writable.write(chunk)) await new Promise((resolve) => writable.once("drain", resolve));
        chunk = "";
      }
    }
    await new Promise<void>((resolve, reject) => {
      writable.on("finish", resolve);
      writable.on("error", reject);
      writable.end(chunk);
    });
    const copy = rows / ((performance.now() - t0) / 1000);

    const single = await forSeconds(2, async () => {
      const r = source.next();
      await sql`insert into raw_messages (group_id, seq, sender_account, sender_device, client_id,
        body, created_at, expires_at) values (${r[0]}, ${r[1]}, ${r[2]}, ${r[3]}, ${r[4]},
        ${r[5]}, ${r[6]}, ${r[7]})`;
    });
    return {
      multi_row_insert_rows_s: Math.round(multi),
      multi_row_batch: batch,
      unnest_insert_rows_s: Math.round(unnest),
      copy_rows_s: Math.round(copy),
      single_row_autocommit_rows_s: Math.round(single),
    };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** PGlite ceilings in this process, on a fresh file-backed database. */
export async function pgliteCeiling(rows = 50_000): Promise<InsertCeiling> {
  const dir = await Deno.makeTempDir({ prefix: "sealpost-bench-pglite-" });
  const pg = await PGlite.create({ dataDir: dir });
  try {
    await pg.exec(TABLE);
    await pg.exec(INDEX);
    const source = new Rows();
    const batch = 1000;
    const multiSql = `insert into raw_messages (${COLUMNS}) values ${placeholders(batch)}`;
    let t0 = performance.now();
    for (let done = 0; done < rows; done += batch) {
      const params: unknown[] = [];
      for (let i = 0; i < batch; i++) params.push(...source.next());
      await pg.query(multiSql, params);
    }
    const multi = rows / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    const single = await forSeconds(2, async () => {
      await pg.query(
        `insert into raw_messages (${COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8)`,
        source.next(),
      );
    });
    return {
      multi_row_insert_rows_s: Math.round(multi),
      multi_row_batch: batch,
      single_row_autocommit_rows_s: Math.round(single),
    };
  } finally {
    await pg.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Reads `count` rows of one group in pages of 500 (the relay's replay page). */
export async function postgresReadCeiling(
  url: string,
  group: string,
  count: number,
): Promise<{ rows: number; seconds: number; rows_s: number }> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const t0 = performance.now();
    let after = 0;
    let read = 0;
    for (;;) {
      const page = await sql`select group_id, seq, sender_account, sender_device, body,
          created_at, expires_at from messages
        where group_id = ${group} and seq > ${after} order by seq limit 500`;
      if (page.length === 0) break;
      read += page.length;
      after = Number(page[page.length - 1].seq);
      if (read >= count) break;
    }
    const seconds = (performance.now() - t0) / 1000;
    return { rows: read, seconds: round(seconds), rows_s: Math.round(read / seconds) };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function hex(bytes: Uint8Array): string[] {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0"));
}

/** `($1, …, $8), ($9, …)` for `rows` rows of 8 columns: a multi-row VALUES like Kysely's. */
function placeholders(rows: number): string {
  return Array.from(
    { length: rows },
    (_, i) => `(${Array.from({ length: 8 }, (_, j) => `$${i * 8 + j + 1}`).join(", ")})`,
  ).join(", ");
}

async function forSeconds(seconds: number, task: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    await task();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

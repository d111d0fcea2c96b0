/**
 * @module
 * Storage footprint: how many bytes one stored message costs in real Postgres, with the
 * relay's own schema and indexes (migrations applied). For 1,000, 10,000 and 100,000 messages
 * with bodies of uniformly random 200 B–2 KiB ciphertext (incompressible, like real
 * ciphertext), spread over 10 groups, it reports the table (heap + TOAST), index and total sizes
 * (`pg_total_relation_size`) per message, and the overhead beyond the body itself.
 *
 * ```sh
 * deno run -A bench/storage.ts     # on a throwaway cluster (needs Postgres's initdb and postgres)
 * ```
 *
 * Writes a Markdown table to stdout (copied into bench/storage.md).
 */

import { sql } from "kysely";
import { openPostgres } from "../relay/store/database.ts";
import { migrate } from "../relay/store/migrate.ts";
import { startPostgres } from "../tests/helpers/postgres.ts";

const COUNTS = [1_000, 10_000, 100_000];
const GROUPS = 10;
const INSERT_BATCH = 1000;

function randomId(n: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

type Row = {
  count: number;
  bodyBytes: number;
  heap: number;
  table: number;
  indexes: number;
  total: number;
  perIndex: [string, number][];
};

async function measure(url: string, count: number): Promise<Row> {
  const handle = openPostgres(url);
  const db = handle.db;
  try {
    await migrate(db);
    const now = Date.now();
    const account = randomId(32);
    const devices = Array.from({ length: 3 }, () => randomId(32));
    await db.insertInto("accounts").values({ id: account, created_at: now }).execute();
    const groups = Array.from({ length: GROUPS }, () => randomId(16));
    await db.insertInto("groups").values(
      groups.map((id) => ({ id, last_seq: 0, retention_s: 30 * 86400, created_at: now })),
    ).execute();
    const seqs = new Map(groups.map((g) => [g, 0]));
    let bodyBytes = 0;
    for (let done = 0; done < count; done += INSERT_BATCH) {
      const rows = [];
      for (let i = done; i < Math.min(count, done + INSERT_BATCH); i++) {
        const group = groups[i % GROUPS];
        const seq = seqs.get(group)! + 1;
        seqs.set(group, seq);
        const size = 200 + Math.floor(Math.random() * (2048 - 200 + 1));
        bodyBytes += size;
        const created = now + i;
        rows.push({
          group_id: group,
          seq,
          sender_account: account,
          sender_device: devices[i % devices.length],
          client_id: randomId(12),
          body: crypto.getRandomValues(new Uint8Array(size)),
          blob_id: null,
          blob_size: null,
          to_devices: null,
          created_at: created,
          expires_at: created + 30 * 86_400_000,
        });
      }
      await db.insertInto("messages").values(rows).execute();
    }
    await sql`vacuum analyze messages`.execute(db);
    const sizes = await sql<{ heap: number; table: number; indexes: number; total: number }>`
      select pg_relation_size('messages')::bigint as heap,
             pg_table_size('messages')::bigint as table,
             pg_indexes_size('messages')::bigint as indexes,
             pg_total_relation_size('messages')::bigint as total`.execute(db);
    const indexes = await sql<{ name: string; bytes: number }>`
      select indexrelname as name, pg_relation_size(indexrelid)::bigint as bytes
      from pg_stat_user_indexes where relname = 'messages' order by bytes desc`.execute(db);
    const s = sizes.rows[0];
    return {
      count,
      bodyBytes,
      heap: s.heap,
      table: s.table,
      indexes: s.indexes,
      total: s.total,
      perIndex: indexes.rows.map((r) => [r.name, r.bytes]),
    };
  } finally {
    await handle.close();
  }
}

const perMessage = (bytes: number, count: number) => Math.round(bytes / count);

async function main(): Promise<void> {
  const cluster = await startPostgres();
  const rows: Row[] = [];
  try {
    for (const count of COUNTS) {
      rows.push(await measure(await cluster.createDatabase(), count));
      console.error(`measured ${count} messages`);
    }
    const version = await cluster.psql("show server_version");
    console.log(
      `Postgres ${version}, schema of migrations/ (all indexes), bodies 200 B–2 KiB random\n`,
    );
    console.log(
      "| messages | avg body | table (heap+TOAST) | indexes | total | total per message | per message beyond the body | per 1,000 messages |",
    );
    console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const r of rows) {
      const body = perMessage(r.bodyBytes, r.count);
      const total = perMessage(r.total, r.count);
      console.log(
        `| ${r.count.toLocaleString("en")} | ${body} B | ${(r.table / 1024).toFixed(0)} KiB | ${
          (r.indexes / 1024).toFixed(0)
        } KiB | ${(r.total / 1024 / 1024).toFixed(2)} MiB | ${total} B | ${total - body} B | ${
          (total * 1000 / 1024 / 1024).toFixed(2)
        } MiB |`,
      );
    }
    const last = rows[rows.length - 1];
    console.log(`\nPer index at ${last.count.toLocaleString("en")} messages:\n`);
    console.log("| index | size | per message |");
    console.log("| --- | ---: | ---: |");
    for (const [name, bytes] of last.perIndex) {
      console.log(
        `| ${name} | ${(bytes / 1024).toFixed(0)} KiB | ${perMessage(bytes, last.count)} B |`,
      );
    }
    console.log(
      `\nHeap only: ${perMessage(last.heap, last.count)} B per message; TOAST and maps: ${
        perMessage(last.table - last.heap, last.count)
      } B per message.`,
    );
  } finally {
    await cluster.destroy();
  }
}

if (import.meta.main) await main();

/**
 * Backup and restore speed: `sealpost backup` and `restore` of 100,000 stored messages (about
 * 1 KB each) on embedded PGlite and on server Postgres. Run: `deno run -A bench/backup.ts`.
 * The numbers feed the recovery-time estimates in docs/operations.md.
 */

import { sql } from "kysely";
import type { Db } from "../relay/store/database.ts";
import { archiveCommand } from "../commands/archive.ts";
import { loadConfig } from "../relay/config/config.ts";
import { openTestDatabase } from "../tests/helpers/relay.ts";
import { startPostgres } from "../tests/helpers/postgres.ts";

const MESSAGES = Number(Deno.args[0] ?? 100_000);

async function seed(db: Db) {
  const now = Date.now();
  await sql`insert into accounts (id, created_at) values ('a', ${now})`.execute(db);
  await sql`insert into devices (id, account_id, cert, created_at, last_seen_at) values ('d', 'a', 'c', ${now}, ${now})`
    .execute(db);
  await sql`insert into groups (id, last_seq, retention_s, created_at) values ('g', ${MESSAGES}, 0, ${now})`
    .execute(db);
  await sql`insert into group_members (group_id, account_id, role, added_at) values ('g', 'a', 'owner', ${now})`
    .execute(db);
  for (let from = 1; from <= MESSAGES; from += 10_000) {
    await sql`insert into messages (group_id, seq, sender_account, sender_device, client_id, body, created_at, expires_at)
      select 'g', s, 'a', 'd', 'c' || s, decode(repeat(md5(s::text), 32), 'hex'), ${now}, null
      from generate_series(${from}::bigint, ${Math.min(MESSAGES, from + 9_999)}::bigint) s`.execute(
      db,
    );
  }
}

async function measure(label: string, fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  const s = (performance.now() - t) / 1000;
  console.log(
    `${label.padEnd(34)} ${s.toFixed(2)} s  (${
      Math.round(MESSAGES / s).toLocaleString("en")
    } messages/s)`,
  );
  return s;
}

const work = await Deno.makeTempDir({ prefix: "sealpost-bench-backup-" });
const pg = await startPostgres();
try {
  console.log(`backup and restore of ${MESSAGES.toLocaleString("en")} messages of 512 B`);
  const embedded = await openTestDatabase("pglite");
  await seed(embedded.handle.db);
  await embedded.handle.close();
  const embeddedConfig = loadConfig({ SEALPOST_DATA_DIR: embedded.dataDir });
  await measure(
    "backup  (PGlite)",
    () => archiveCommand("backup", embeddedConfig, `${work}/a.sealpost`, () => {}, { quiet: true }),
  );
  const size = (await Deno.stat(`${work}/a.sealpost`)).size;
  console.log(`archive size                       ${(size / 1048576).toFixed(1)} MiB`);
  const fresh = await openTestDatabase("pglite");
  await fresh.handle.close();
  await measure(
    "restore (PGlite)",
    () =>
      archiveCommand(
        "restore",
        loadConfig({ SEALPOST_DATA_DIR: fresh.dataDir }),
        `${work}/a.sealpost`,
        () => {},
        {
          quiet: true,
        },
      ),
  );
  const url = await pg.createDatabase();
  const serverConfig = loadConfig({ SEALPOST_DATA_DIR: `${work}/s`, DATABASE_URL: url });
  await measure(
    "restore (Postgres)",
    () => archiveCommand("restore", serverConfig, `${work}/a.sealpost`, () => {}, { quiet: true }),
  );
  await measure(
    "backup  (Postgres)",
    () => archiveCommand("backup", serverConfig, `${work}/b.sealpost`, () => {}, { quiet: true }),
  );
} finally {
  await pg.destroy();
  await Deno.remove(work, { recursive: true }).catch(() => {});
}

/**
 * Backups: one taken while sends are running restores to a consistent state (every group's
 * messages gap-free up to its last_seq, everything acknowledged before it started included), and
 * scheduled backups rotate, keeping the newest few.
 */
import assert from "node:assert/strict";
import { sql } from "kysely";
import { archiveCommand } from "../../../commands/archive.ts";
import { BackupSchedule } from "../../../relay/jobs/backup_schedule.ts";
import { loadConfig } from "../../../relay/config/config.ts";
import { openPostgres } from "../../../relay/store/database.ts";
import { cipher, newDevice } from "../../helpers/accounts.ts";
import { sharedPostgres } from "../../helpers/postgres.ts";
import { dbUnavailable, startTestRelay, testBothDatabases } from "../../helpers/relay.ts";

const why = dbUnavailable("postgres");

Deno.test({
  name: "backup while sends run restores to a consistent state",
  ignore: why !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const work = await Deno.makeTempDir({ prefix: "sealpost-backup-" });
    const t = await startTestRelay({ db: "postgres", env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const senders = await Promise.all([0, 1, 2, 3].map(() => newDevice(t.url)));
      const groups = await Promise.all(
        senders.map((s) =>
          s.api.createGroup({
            members: senders.map((o) => o.account).filter((a) => a !== s.account),
          })
        ),
      );
      const acked: { group: string; seq: number; at: number }[] = [];
      let stop = false;
      const sending = senders.map(async (s, i) => {
        for (let n = 0; n < 2000 && !stop; n++) {
          const g = groups[(i + n) % groups.length].id;
          const r = await s.api.send(g, { body: cipher(200) });
          acked.push({ group: g, seq: r.seq!, at: performance.now() });
        }
      });
      await new Promise((r) => setTimeout(r, 500));
      const started = performance.now();
      const before = acked.filter((a) => a.at < started);
      const file = `${work}/live.sealpost`;
      const source = loadConfig({ SEALPOST_DATA_DIR: t.dataDir, DATABASE_URL: t.databaseUrl! });
      await archiveCommand("backup", source, file, () => {}, { quiet: true });
      await new Promise((r) => setTimeout(r, 300));
      stop = true;
      await Promise.all(sending);
      assert.ok(acked.length > before.length, "sends kept going during the backup");

      const target = await (await sharedPostgres()).createDatabase();
      await archiveCommand(
        "restore",
        loadConfig({ SEALPOST_DATA_DIR: `${work}/restored`, DATABASE_URL: target }),
        file,
        () => {},
        { quiet: true },
      );
      const db = openPostgres(target);
      try {
        const rows = await sql<{ id: string; last_seq: number; n: number; max: number | null }>`
          select g.id, g.last_seq, count(m.seq)::int as n, max(m.seq) as max
          from groups g left join messages m on m.group_id = g.id group by g.id, g.last_seq`
          .execute(db.db);
        assert.equal(rows.rows.length, 4);
        for (const g of rows.rows) {
          assert.equal(g.n, g.last_seq, `group ${g.id}: every seq up to last_seq is there`);
          assert.equal(g.max ?? 0, g.last_seq);
          for (const a of before.filter((x) => x.group === g.id)) {
            assert.ok(a.seq <= g.last_seq, `acknowledged ${a.seq} before the backup is in it`);
          }
        }
        const bad = await sql<{ n: number }>`
          select count(*)::int as n from cursors c join groups g on g.id = c.group_id
          where c.seq > g.last_seq`.execute(db.db);
        assert.equal(bad.rows[0].n, 0);
      } finally {
        await db.close();
      }
    } finally {
      await t.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});

testBothDatabases(
  "BackupSchedule writes restorable archives and keeps the newest N",
  async (db) => {
    const work = await Deno.makeTempDir({ prefix: "sealpost-backup-" });
    const t = await startTestRelay({ db });
    try {
      const alice = await newDevice(t.url);
      const g = await alice.api.createGroup();
      const schedule = new BackupSchedule({
        db: t.database.db,
        dbKind: t.database.kind,
        blobs: t.relay.blobs.store,
        clock: t.clock,
        log: t.relay.deps.log,
        metrics: t.relay.deps.metrics,
        dir: `${work}/backups`,
        intervalMs: 3_600_000,
        keep: 2,
        isLeader: () => true,
      });
      const files = [];
      for (let i = 0; i < 3; i++) {
        await alice.api.send(g.id, { body: cipher() });
        files.push(await schedule.runOnce());
        t.clock.advance(3_600_000);
      }
      const left = [...Deno.readDirSync(`${work}/backups`)].map((e) => e.name).sort();
      assert.deepEqual(left, files.slice(1).map((f) => f.split("/").pop()).sort());
      const metrics = await t.relay.deps.metrics.text();
      assert.match(metrics, /sealpost_backups_total\{result="ok"\} 3/);
    } finally {
      await t.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
);

/**
 * export → import moves an install between embedded PGlite + blob files and server Postgres + S3
 * (a real radosgw) and back, and everything — devices, tokens, groups, messages, cursors, blobs —
 * arrives intact.
 */
import assert from "node:assert/strict";
import { archiveCommand } from "../../../commands/archive.ts";
import { loadConfig } from "../../../relay/config/config.ts";
import { cipher, newAccount, newDevice, type TestDevice } from "../../helpers/accounts.ts";
import { sharedPostgres } from "../../helpers/postgres.ts";
import { dbUnavailable, startTestRelay } from "../../helpers/relay.ts";
import { s3Unavailable, sharedS3 } from "../../helpers/s3.ts";
import { HttpClient } from "../../../client/mod.ts";

const why = dbUnavailable("postgres") ?? s3Unavailable();
if (why) console.warn(`skipping archive round-trip: ${why}`);

type Snapshot = {
  devices: unknown;
  groups: unknown;
  pages: unknown[];
  blob: number[];
};

async function snapshot(
  url: string,
  who: TestDevice[],
  groupIds: string[],
  blobId: string,
): Promise<Snapshot> {
  const [a] = who;
  const api = new HttpClient(url);
  api.token = a.token; // the old token must still work after the move
  const pages = [];
  for (const d of who) {
    const c = new HttpClient(url);
    c.token = d.token;
    for (const g of groupIds) pages.push(await c.messages(g, 0, 1000));
  }
  return {
    devices: (await api.devices(a.account)).devices.map((d) => ({ ...d, last_seen_at: 0 })),
    groups: await api.groups(),
    pages,
    blob: [...await api.downloadBlob(blobId)],
  };
}

Deno.test({
  name: "export → import round-trips PGlite+files to Postgres+S3 and back with everything intact",
  ignore: why !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const s3 = await sharedS3();
    const pg = await sharedPostgres();
    const work = await Deno.makeTempDir({ prefix: "sealpost-archive-" });
    try {
      // 1. An embedded install with a bit of everything.
      const source = await startTestRelay({ db: "pglite", env: { SEALPOST_RATE_SEND: "off" } });
      const [phone, laptop] = await newAccount(source.url, 2);
      const bob = await newDevice(source.url);
      const g1 = await phone.api.createGroup({ members: [bob.account] });
      const g2 = await bob.api.createGroup({ members: [phone.account], retention_s: 3600 });
      for (let i = 0; i < 30; i++) await phone.api.send(g1.id, { body: cipher(50 + i) });
      await bob.api.send(g1.id, { body: cipher(), to: [laptop.device] });
      await bob.api.send(g2.id, { body: cipher(2000) });
      const bytes = new Uint8Array(300_000);
      for (let i = 0; i < bytes.length; i += 65536) {
        crypto.getRandomValues(bytes.subarray(i, i + 65536));
      }
      const blob = await phone.api.putBlob(g1.id, bytes);
      await phone.api.send(g1.id, { body: cipher(), blob: blob.id });
      await bob.api.ack({ [g1.id]: 12 });
      const who = [phone, laptop, bob];
      const before = await snapshot(source.url, who, [g1.id, g2.id], blob.id);
      assert.deepEqual(before.blob, [...bytes]);
      await source.stop();

      // 2. Export it and import into server Postgres + S3.
      const embedded = loadConfig({ SEALPOST_DATA_DIR: source.dataDir });
      const file = `${work}/move.sealpost`;
      const lines: string[] = [];
      await archiveCommand("export", embedded, file, (l) => lines.push(l), { quiet: true });
      assert.match(lines[0], /blobs/);
      await assert.rejects(
        archiveCommand("export", embedded, file, () => {}, { quiet: true }),
        /exists/,
      );
      const serverUrl = await pg.createDatabase();
      const server = loadConfig({
        SEALPOST_DATA_DIR: `${work}/server`,
        DATABASE_URL: serverUrl,
        SEALPOST_BLOB_STORE: "s3",
        ...s3.env,
      });
      await archiveCommand("import", server, file, (l) => lines.push(l), { quiet: true });
      assert.match(lines.at(-1)!, /verified/);
      await assert.rejects(
        archiveCommand("import", server, file, () => {}, { quiet: true }),
        /empty database/,
      );
      const moved = await startTestRelay({
        db: "postgres",
        databaseUrl: serverUrl,
        env: { SEALPOST_BLOB_STORE: "s3", ...s3.env },
      });
      try {
        const after = await snapshot(moved.url, who, [g1.id, g2.id], blob.id);
        assert.deepEqual(after.devices, before.devices);
        assert.deepEqual(after.groups, before.groups);
        assert.deepEqual(after.pages, before.pages);
        assert.deepEqual(after.blob, before.blob);
        // and it keeps working: the next message gets the next seq
        const c = new HttpClient(moved.url);
        c.token = phone.token;
        assert.equal((await c.send(g1.id, { body: cipher() })).seq, 33);
      } finally {
        await moved.stop();
      }

      // 3. And back: Postgres + S3 → a fresh embedded install.
      const back = `${work}/back.sealpost`;
      await archiveCommand("export", server, back, () => {}, { quiet: true });
      const freshDir = await Deno.makeTempDir({ prefix: "sealpost-archive-back-" });
      const { openTestDatabase } = await import("../../helpers/relay.ts");
      const fresh = await openTestDatabase("pglite", {});
      await fresh.handle.close();
      const embeddedAgain = loadConfig({ SEALPOST_DATA_DIR: fresh.dataDir });
      await archiveCommand("import", embeddedAgain, back, () => {}, { quiet: true });
      const home = await startTestRelay({ db: "pglite", dataDir: fresh.dataDir });
      try {
        const after = await snapshot(home.url, who, [g1.id, g2.id], blob.id);
        // The message sent on the server install is there too.
        assert.equal((after.pages[0] as { last_seq: number }).last_seq, 33);
        assert.deepEqual(after.devices, before.devices);
        assert.deepEqual(after.blob, before.blob);
      } finally {
        await home.stop();
        await Deno.remove(freshDir, { recursive: true }).catch(() => {});
      }
    } finally {
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "import refuses a truncated archive and leaves the database empty",
  ignore: dbUnavailable("pglite") !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const work = await Deno.makeTempDir({ prefix: "sealpost-archive-" });
    try {
      const source = await startTestRelay({ db: "pglite" });
      const alice = await newDevice(source.url);
      const g = await alice.api.createGroup();
      for (let i = 0; i < 5; i++) await alice.api.send(g.id, { body: cipher() });
      await source.stop();
      const file = `${work}/a.sealpost`;
      await archiveCommand(
        "export",
        loadConfig({ SEALPOST_DATA_DIR: source.dataDir }),
        file,
        () => {},
        { quiet: true },
      );
      const bytes = await Deno.readFile(file);
      await Deno.writeFile(`${work}/cut.sealpost`, bytes.slice(0, Math.floor(bytes.length * 0.6)));
      const { openTestDatabase } = await import("../../helpers/relay.ts");
      const target = await openTestDatabase("pglite", {});
      await target.handle.close();
      const config = loadConfig({ SEALPOST_DATA_DIR: target.dataDir });
      await assert.rejects(
        archiveCommand("import", config, `${work}/cut.sealpost`, () => {}, { quiet: true }),
      );
      const again = await openTestDatabase("pglite", { dataDir: target.dataDir });
      const n = await again.handle.db.selectFrom("messages").select((eb) =>
        eb.fn.countAll().as("n")
      ).executeTakeFirst();
      assert.equal(Number(n?.n), 0);
      await again.handle.close();
    } finally {
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});

/**
 * Keeps docs/privacy.md honest (issue 16): every column of every table a migrated database has
 * must be listed on the page, under its table, with why it is kept and for how long — so a
 * migration that adds a column fails this test until the page says what the new column keeps.
 * The schema is read from a migrated database's information_schema, on PGlite and on Postgres.
 */

import assert from "node:assert/strict";
import { sql } from "kysely";
import { openTestDatabase, testBothDatabases } from "../helpers/relay.ts";

/** `table → columns` as docs/privacy.md lists them (`### \`table\`` then `| \`column\` | …`). */
async function documented(): Promise<Map<string, Map<string, string[]>>> {
  const text = await Deno.readTextFile(new URL("../../docs/privacy.md", import.meta.url));
  const tables = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | null = null;
  for (const line of text.split("\n")) {
    const heading = /^### `([a-z_0-9]+)`/.exec(line);
    if (heading) {
      current = new Map();
      tables.set(heading[1], current);
      continue;
    }
    if (line.startsWith("## ")) current = null;
    const row = /^\| `([a-z_0-9]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (row && current) current.set(row[1], row[2].split("|").map((c) => c.trim()));
  }
  return tables;
}

testBothDatabases("docs/privacy.md lists every table and column the database keeps", async (db) => {
  const { handle } = await openTestDatabase(db);
  try {
    const rows = await sql<{ table_name: string; column_name: string }>`
      select table_name, column_name from information_schema.columns
      where table_schema = current_schema() and table_name not like 'kysely_%'
      order by table_name, ordinal_position`.execute(handle.db);
    assert.ok(rows.rows.length > 50, "the schema was read");
    const doc = await documented();
    const missing: string[] = [];
    for (const { table_name: table, column_name: column } of rows.rows) {
      const cells = doc.get(table)?.get(column);
      if (!cells) missing.push(`${table}.${column}`);
      else {
        assert.equal(cells.length, 3, `${table}.${column}: what, why, how long`);
        for (const cell of cells) assert.ok(cell.length > 0, `${table}.${column}: empty cell`);
      }
    }
    assert.deepEqual(missing, [], "columns docs/privacy.md does not list");
    const real = new Set(rows.rows.map((r) => `${r.table_name}.${r.column_name}`));
    const stale = [...doc].flatMap(([table, columns]) =>
      [...columns.keys()].map((c) => `${table}.${c}`)
    ).filter((c) => !real.has(c));
    assert.deepEqual(stale, [], "columns docs/privacy.md lists that no longer exist");
  } finally {
    await handle.close();
  }
});

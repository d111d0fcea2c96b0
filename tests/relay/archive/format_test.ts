/**
 * The archive format's bounds: table records stay near their size target however large the rows,
 * and the reader refuses a line longer than its limit instead of buffering it, while reading
 * records split across many small chunks.
 */
import assert from "node:assert/strict";
import {
  ArchiveReader,
  ArchiveWriter,
  RECORD_TARGET_CHARS,
  recordsOf,
  ROWS_PER_RECORD,
} from "../../../relay/archive/format.ts";

async function gzipOf(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A stream that hands out `bytes` `size` bytes at a time. */
function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

Deno.test("records split by row count and by size; one huge row gets its own record", () => {
  const small = Array.from({ length: 1200 }, (_, i) => ({ id: i }));
  assert.deepEqual(
    recordsOf("t", small).map((r) => r.rows.length),
    [ROWS_PER_RECORD, ROWS_PER_RECORD, 200],
  );
  const body = "x".repeat(RECORD_TARGET_CHARS / 4);
  const big = Array.from({ length: 10 }, (_, i) => ({ id: i, body }));
  const records = recordsOf("t", big);
  assert.ok(records.length >= 3, `${records.length} records`);
  for (const record of records) {
    assert.ok(JSON.stringify(record).length <= RECORD_TARGET_CHARS + 1024);
  }
  assert.deepEqual(records.flatMap((r) => r.rows), big);
  const huge = [{ id: 0 }, { id: 1, body: "y".repeat(RECORD_TARGET_CHARS * 2) }, { id: 2 }];
  assert.deepEqual(recordsOf("t", huge).map((r) => r.rows.length), [1, 1, 1]);
});

Deno.test("the reader returns records written in many small chunks, in order", async () => {
  const sink = new TransformStream<Uint8Array, Uint8Array>();
  const collected = new Response(sink.readable).arrayBuffer();
  const writer = new ArchiveWriter(sink.writable);
  for (let i = 0; i < 50; i++) {
    await writer.write({ table: "t", rows: [{ id: i, pad: "z".repeat(i * 37) }] });
  }
  await writer.close();
  const reader = new ArchiveReader(chunked(new Uint8Array(await collected), 7));
  for (let i = 0; i < 50; i++) {
    const record = (await reader.next()) as unknown as { rows: { id: number }[] };
    assert.equal(record.rows[0].id, i);
  }
  assert.equal(await reader.next(), null);
});

Deno.test("the reader refuses a line past its limit instead of buffering it", async () => {
  const line = JSON.stringify({ table: "t", rows: [{ body: "a".repeat(50_000) }] });
  const reader = new ArchiveReader(chunked(await gzipOf(line + "\n"), 4096), 10_000);
  await assert.rejects(reader.next(), /longer than 10000 characters/);
  const ok = new ArchiveReader(chunked(await gzipOf(line + "\n"), 4096), 100_000);
  assert.equal(((await ok.next()) as { rows: unknown[] }).rows.length, 1);
  assert.equal(await ok.next(), null);
});

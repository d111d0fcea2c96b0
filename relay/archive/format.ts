/**
 * @module
 * The archive format shared by `export`/`import` (move an install between embedded and server
 * databases and blob stores) and `backup`/`restore`: one gzip-compressed stream of JSON lines.
 *
 * ```
 * {"kind":"sealpost-archive","version":1,"created_at":…,"migrations":[…],"source":{…}}
 * {"table":"accounts","rows":[…]}                 ← tables in foreign-key order, ≤ 500 rows a line
 * {"blob":"<key>","part":0,"data":"<base64url>"}  ← blob bytes in 1 MiB parts
 * {"blob_end":"<key>","size":…,"sha256":"…"}
 * {"end":true,"counts":{"accounts":…},"blobs":…,"blob_bytes":…}
 * ```
 *
 * Binary column values are written as `{"$b":"<base64url>"}`. The trailer's counts let the
 * importer verify that everything arrived.
 */

import { fromBase64Url, toBase64Url } from "../base/encoding.ts";

/** The archive header. */
export type ArchiveHeader = {
  kind: "sealpost-archive";
  version: 1;
  created_at: number;
  migrations: string[];
  source: { database: string; blobs: string; sealpost: string };
};

/** The archive trailer. */
export type ArchiveTrailer = {
  end: true;
  counts: Record<string, number>;
  blobs: number;
  blob_bytes: number;
  missing_blobs: string[];
};

/** One record of an archive. */
export type ArchiveRecord =
  | ArchiveHeader
  | { table: string; rows: Record<string, unknown>[] }
  | { blob: string; part: number; data: string }
  | { blob_end: string; size: number; sha256: string }
  | ArchiveTrailer;

/** Tables that are never archived: per-process state, sessions and transient challenges. */
export const TRANSIENT_TABLES = new Set([
  "auth_nonces",
  "instances",
  "online_devices",
  "bus_spill",
  "admin_sessions",
  "admin_setup_tokens",
  "sealpost_migrations",
  "sealpost_migrations_lock",
]);

/** Rows per table record. */
export const ROWS_PER_RECORD = 500;
/** Raw bytes per blob part. */
export const BLOB_PART_BYTES = 1024 * 1024;

/** Encodes a row: binary values become `{"$b": base64url}`. */
export function encodeRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    out[key] = value instanceof Uint8Array ? { $b: toBase64Url(value) } : value;
  }
  return out;
}

/** Decodes a row written by {@link encodeRow}. */
export function decodeRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    const b = (value as { $b?: string } | null)?.$b;
    out[key] = typeof b === "string" ? fromBase64Url(b) : value;
  }
  return out;
}

/** Writes records as gzip'd JSON lines. */
export class ArchiveWriter {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #done: Promise<void>;
  #encoder = new TextEncoder();

  constructor(sink: WritableStream<Uint8Array>) {
    const gzip = new CompressionStream("gzip");
    this.#done = gzip.readable.pipeTo(sink);
    this.#writer = gzip.writable.getWriter() as WritableStreamDefaultWriter<Uint8Array>;
  }

  async write(record: ArchiveRecord): Promise<void> {
    await this.#writer.write(this.#encoder.encode(JSON.stringify(record) + "\n"));
  }

  async close(): Promise<void> {
    await this.#writer.close();
    await this.#done;
  }
}

/**
 * The longest line {@link ArchiveReader} accepts, in characters. The writer keeps table records
 * near {@link RECORD_TARGET_CHARS} and blob parts are 1 MiB, so only a single row larger than this
 * (a message body over ~190 MiB) could reach it; a longer line is a corrupt or hostile file.
 */
export const MAX_LINE_CHARS = 256 * 1024 * 1024;
/** About how long a table record grows before the writer starts another. */
export const RECORD_TARGET_CHARS = 8 * 1024 * 1024;

/**
 * Splits encoded rows into records of at most {@link ROWS_PER_RECORD} rows and about
 * {@link RECORD_TARGET_CHARS} characters (a single larger row gets a record of its own).
 */
export function recordsOf(
  table: string,
  rows: Record<string, unknown>[],
): { table: string; rows: Record<string, unknown>[] }[] {
  const records: { table: string; rows: Record<string, unknown>[] }[] = [];
  let current: Record<string, unknown>[] = [];
  let chars = 0;
  for (const row of rows) {
    const size = JSON.stringify(row).length;
    if (
      current.length > 0 &&
      (chars + size > RECORD_TARGET_CHARS || current.length >= ROWS_PER_RECORD)
    ) {
      records.push({ table, rows: current });
      current = [];
      chars = 0;
    }
    current.push(row);
    chars += size;
  }
  if (current.length > 0) records.push({ table, rows: current });
  return records;
}

/**
 * Reads records from a gzip'd JSON-lines stream, one at a time. Lines are bounded by
 * `maxLineChars`, and each chunk is searched for a newline once (never the whole buffer again).
 */
export class ArchiveReader {
  #reader: ReadableStreamDefaultReader<string>;
  /** Decoded text not yet returned; `#scanned` characters of it hold no newline. */
  #buffer = "";
  #scanned = 0;
  #ended = false;
  readonly #maxLineChars: number;

  constructor(source: ReadableStream<Uint8Array>, maxLineChars = MAX_LINE_CHARS) {
    this.#maxLineChars = maxLineChars;
    this.#reader = source
      .pipeThrough(
        new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
      )
      .pipeThrough(new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>)
      .getReader();
  }

  /** The next record, or null at the end of the stream. */
  async next(): Promise<ArchiveRecord | null> {
    while (true) {
      const newline = this.#buffer.indexOf("\n", this.#scanned);
      const end = newline >= 0 ? newline : this.#buffer.length;
      if (end > this.#maxLineChars) {
        throw new Error(
          `Cannot read the archive: a record is longer than ${this.#maxLineChars} characters (corrupt file)`,
        );
      }
      if (newline >= 0) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        this.#scanned = 0;
        if (line.trim() === "") continue;
        try {
          return JSON.parse(line) as ArchiveRecord;
        } catch {
          throw new Error(
            "Cannot read the archive: a record is not valid JSON (truncated or corrupt file)",
          );
        }
      }
      this.#scanned = this.#buffer.length;
      if (this.#ended) {
        if (this.#buffer.trim() === "") return null;
        throw new Error(
          "Cannot read the archive: it ends in the middle of a record (truncated file)",
        );
      }
      const { value, done } = await this.#reader.read();
      if (done) this.#ended = true;
      else this.#buffer += value;
    }
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/** A one-line progress display on stderr (redrawn on a TTY, a line every few seconds otherwise). */
export class Progress {
  #last = 0;
  #tty = Deno.stderr.isTerminal();
  constructor(private readonly quiet = false) {}

  /** Shows `label` at `done` of `total`. */
  update(label: string, done: number, total: number, force = false): void {
    if (this.quiet) return;
    const now = Date.now();
    if (!force && now - this.#last < (this.#tty ? 100 : 3000)) return;
    this.#last = now;
    const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
    const width = 24;
    const bar = "#".repeat(Math.round((pct / 100) * width)).padEnd(width, ".");
    const line = `${label.padEnd(22)} [${bar}] ${pct.toString().padStart(3)}%  ${
      done.toLocaleString("en")
    }/${total.toLocaleString("en")}`;
    const bytes = new TextEncoder().encode(this.#tty ? `\r${line}` : `${line}\n`);
    Deno.stderr.writeSync(bytes);
  }

  /** Ends the current line. */
  done(): void {
    if (!this.quiet && this.#tty) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  }
}

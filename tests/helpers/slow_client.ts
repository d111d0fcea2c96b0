/**
 * @module
 * A WebSocket client that stops reading: a raw TCP connection that does the handshake, sends
 * masked text frames, and then lets the relay's output pile up — the slow consumer that
 * backpressure must cut off. Afterwards `drain()` reads everything that did arrive and returns
 * the frames and the close code.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a masked client text frame. */
function maskedFrame(text: string): Uint8Array {
  const payload = encoder.encode(text);
  const len = payload.length;
  const header: number[] = [0x81];
  if (len < 126) header.push(0x80 | len);
  else if (len < 65536) header.push(0x80 | 126, len >> 8, len & 0xff);
  else throw new Error("frame too long for this helper");
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const out = new Uint8Array(header.length + 4 + len);
  out.set(header, 0);
  out.set(mask, header.length);
  for (let i = 0; i < len; i++) out[header.length + 4 + i] = payload[i] ^ mask[i % 4];
  return out;
}

/** A client that can stop reading. */
export class SlowClient {
  private constructor(private readonly conn: Deno.TcpConn, private pending: Uint8Array) {}

  /** Connects and completes the WebSocket handshake. */
  static async connect(port: number, path = "/v1/ws"): Promise<SlowClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await conn.write(encoder.encode(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ));
    let buffer: Uint8Array = new Uint8Array(0);
    const chunk = new Uint8Array(4096);
    for (let i = 0; i < 100; i++) {
      const n = await conn.read(chunk);
      if (n === null) throw new Error("connection closed during handshake");
      buffer = concat(buffer, chunk.subarray(0, n));
      const text = decoder.decode(buffer);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        if (!text.startsWith("HTTP/1.1 101")) {
          throw new Error(`handshake failed: ${text.slice(0, 80)}`);
        }
        const headerBytes = encoder.encode(text.slice(0, end + 4)).length;
        return new SlowClient(conn, buffer.subarray(headerBytes));
      }
    }
    throw new Error("no handshake response");
  }

  /** Sends a JSON text frame. */
  async send(frame: unknown): Promise<void> {
    await this.conn.write(maskedFrame(JSON.stringify(frame)));
  }

  /**
   * Reads frames until one matches (before the client stops reading, e.g. until `synced`);
   * the rest of what arrived stays for {@link drain}. Throws after `timeoutMs` or a close.
   */
  async until(
    match: (frame: Record<string, unknown>) => boolean,
    timeoutMs = 10_000,
  ): Promise<Record<string, unknown>> {
    const chunk = new Uint8Array(1 << 16);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const parsed = parseFrames(this.pending);
      const at = parsed.frames.findIndex(match);
      if (at >= 0) {
        // The frames after the match stay as bytes for later reads.
        this.pending = this.pending.subarray(parsed.ends[at]);
        return parsed.frames[at];
      }
      if (parsed.closeCode !== null) throw new Error(`closed ${parsed.closeCode} before the frame`);
      const n = await this.conn.read(chunk);
      if (n === null) throw new Error("connection closed before the frame");
      this.pending = concat(this.pending, chunk.subarray(0, n));
    }
    throw new Error("no matching frame in time");
  }

  /**
   * Reads every frame until the server closes (or `timeoutMs`), returning the text frames and the
   * close code.
   */
  async drain(
    timeoutMs = 20_000,
  ): Promise<{ frames: Record<string, unknown>[]; closeCode: number | null }> {
    const frames: Record<string, unknown>[] = [];
    let buffer: Uint8Array = this.pending;
    const chunk = new Uint8Array(1 << 16);
    const deadline = Date.now() + timeoutMs;
    let closeCode: number | null = null;
    while (Date.now() < deadline && closeCode === null) {
      const parsed = parseFrames(buffer);
      frames.push(...parsed.frames);
      closeCode = parsed.closeCode;
      buffer = parsed.rest;
      if (closeCode !== null) break;
      const n = await this.conn.read(chunk);
      if (n === null) break;
      buffer = concat(buffer, chunk.subarray(0, n));
    }
    try {
      this.conn.close();
    } catch { /* closed */ }
    return { frames, closeCode };
  }
}

/**
 * The complete server frames at the start of `buffer`: text frames parsed, the close code if a
 * close frame came, the bytes left over, and where each text frame ends.
 */
function parseFrames(buffer: Uint8Array): {
  frames: Record<string, unknown>[];
  ends: number[];
  closeCode: number | null;
  rest: Uint8Array;
} {
  const frames: Record<string, unknown>[] = [];
  const ends: number[] = [];
  let closeCode: number | null = null;
  let at = 0;
  while (buffer.length - at >= 2 && closeCode === null) {
    const opcode = buffer[at] & 0x0f;
    let len = buffer[at + 1] & 0x7f;
    let offset = at + 2;
    if (len === 126) {
      if (buffer.length - at < 4) break;
      len = (buffer[at + 2] << 8) | buffer[at + 3];
      offset = at + 4;
    } else if (len === 127) {
      if (buffer.length - at < 10) break;
      len = Number(new DataView(buffer.buffer, buffer.byteOffset + at + 2, 8).getBigUint64(0));
      offset = at + 10;
    }
    if (buffer.length < offset + len) break;
    const payload = buffer.subarray(offset, offset + len);
    at = offset + len;
    if (opcode === 1) {
      frames.push(JSON.parse(decoder.decode(payload)));
      ends.push(at);
    }
    if (opcode === 8) closeCode = len >= 2 ? (payload[0] << 8) | payload[1] : 1005;
  }
  return { frames, ends, closeCode, rest: buffer.subarray(at) };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

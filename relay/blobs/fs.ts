/**
 * @module
 * The filesystem blob store (the embedded default): objects are files under
 * `$SEALPOST_DATA_DIR/blobs`, moved through the relay's own URLs signed with HMAC-SHA256 and
 * expiring (`/v1/blobs/:id/data?exp=&sig=`). An upload streams into a temporary file while its
 * length and SHA-256 are checked, and is renamed into place only when both match, so a reader
 * never sees half a blob. The signing key is generated once and kept in the blob directory.
 */

import { createHash } from "node:crypto";
import { fromBase64Url, randomId, toBase64Url, utf8 } from "../base/encoding.ts";
import {
  type BlobExpectation,
  BlobMismatchError,
  type LocalBlobStore,
  type ObjectInfo,
  type SignedRequest,
  type UrlWindow,
} from "./mod.ts";

const KEY_FILE = ".url-key";

/** Blobs as files, served through the relay's signed URLs. */
export class FsBlobStore implements LocalBlobStore {
  readonly kind = "fs";
  readonly location: string;
  #key: Promise<CryptoKey> | undefined;

  /**
   * @param dir the blob directory, `$SEALPOST_DATA_DIR/blobs`
   * @param publicUrl the relay's public base URL, which signed URLs start with
   */
  constructor(readonly dir: string, readonly publicUrl: string) {
    this.location = dir;
  }

  /** The HMAC key, created on first use and kept in `<dir>/.url-key` across restarts. */
  #signingKey(): Promise<CryptoKey> {
    this.#key ??= (async () => {
      await Deno.mkdir(`${this.dir}/.tmp`, { recursive: true });
      const path = `${this.dir}/${KEY_FILE}`;
      let raw: Uint8Array | null = null;
      try {
        raw = fromBase64Url((await Deno.readTextFile(path)).trim());
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      if (!raw || raw.length < 32) {
        raw = crypto.getRandomValues(new Uint8Array(32));
        const tmp = `${path}.${randomId(6)}`;
        await Deno.writeTextFile(tmp, toBase64Url(raw), { mode: 0o600 });
        try {
          await Deno.link(tmp, path); // fails if another process created it first
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
          raw = fromBase64Url((await Deno.readTextFile(path)).trim())!;
        } finally {
          await Deno.remove(tmp).catch(() => {});
        }
      }
      return await crypto.subtle.importKey(
        "raw",
        raw as Uint8Array<ArrayBuffer>,
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign", "verify"],
      );
    })();
    this.#key.catch(() => (this.#key = undefined));
    return this.#key;
  }

  #path(key: string): string {
    if (!/^[A-Za-z0-9_-]{8,}$/.test(key)) throw new Error(`Not a blob key: ${key}`);
    return `${this.dir}/${key.slice(0, 2)}/${key}`;
  }

  async #sign(method: string, key: string, exp: number): Promise<string> {
    const mac = await crypto.subtle.sign(
      "HMAC",
      await this.#signingKey(),
      utf8(`${method}\n${key}\n${exp}`),
    );
    return toBase64Url(new Uint8Array(mac));
  }

  async #url(method: "PUT" | "GET", key: string, window: UrlWindow): Promise<string> {
    const exp = window.now + window.ttlMs;
    const sig = await this.#sign(method, key, exp);
    return `${this.publicUrl}/v1/blobs/${key}/data?exp=${exp}&sig=${sig}`;
  }

  async uploadUrl(
    key: string,
    _expect: BlobExpectation,
    window: UrlWindow,
  ): Promise<SignedRequest> {
    // Size and digest are checked against the blob's record when the body arrives.
    return { url: await this.#url("PUT", key, window), method: "PUT", headers: {} };
  }

  downloadUrl(key: string, window: UrlWindow): Promise<string> {
    return this.#url("GET", key, window);
  }

  async verify(
    method: "PUT" | "GET",
    key: string,
    exp: number,
    sig: string,
    now: number,
  ): Promise<boolean> {
    const mac = fromBase64Url(sig);
    if (!mac || !Number.isSafeInteger(exp) || exp <= now) return false;
    // crypto.subtle.verify compares in constant time.
    return await crypto.subtle.verify(
      "HMAC",
      await this.#signingKey(),
      mac as Uint8Array<ArrayBuffer>,
      utf8(`${method}\n${key}\n${exp}`),
    );
  }

  async write(
    key: string,
    body: ReadableStream<Uint8Array>,
    expect: BlobExpectation,
  ): Promise<void> {
    await this.#signingKey(); // creates the directories
    const target = this.#path(key);
    const tmp = `${this.dir}/.tmp/${key}.${randomId(6)}`;
    const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
    const hash = createHash("sha256");
    let size = 0;
    let done = false;
    try {
      for await (const chunk of body) {
        size += chunk.length;
        if (size > expect.size) {
          throw new BlobMismatchError(
            `The body is longer than the declared ${expect.size} bytes`,
            true,
          );
        }
        hash.update(chunk);
        let written = 0;
        while (written < chunk.length) written += await file.write(chunk.subarray(written));
      }
      if (size !== expect.size) {
        throw new BlobMismatchError(`The body is ${size} bytes; ${expect.size} were declared`);
      }
      if (toBase64Url(new Uint8Array(hash.digest())) !== expect.sha256) {
        throw new BlobMismatchError("The body's SHA-256 differs from the declared one");
      }
      await file.sync();
      file.close();
      done = true;
      await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
      await Deno.rename(tmp, target);
    } finally {
      if (!done) file.close();
      await Deno.remove(tmp).catch(() => {});
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const info = await Deno.stat(this.#path(key));
      return { size: info.size, sha256: null };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  async read(key: string): Promise<ReadableStream<Uint8Array> | null> {
    try {
      return (await Deno.open(this.#path(key), { read: true })).readable;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await Deno.remove(this.#path(key));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }

  async check(): Promise<void> {
    await this.#signingKey();
    const probe = `${this.dir}/.tmp/probe-${randomId(6)}`;
    await Deno.writeTextFile(probe, "ok");
    await Deno.remove(probe);
  }
}

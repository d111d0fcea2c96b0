/**
 * @module
 * The S3-compatible blob store (AWS S3, Tigris, Cloudflare R2, MinIO, Ceph radosgw): clients
 * move bytes straight to and from the bucket through presigned URLs signed by `aws4fetch`
 * (SigV4, query-string auth). A presigned PUT signs `content-length`, `x-amz-content-sha256`
 * and `x-amz-checksum-sha256`, so the service itself refuses a body of another length (the
 * signature no longer matches) or, where it checks payload hashes, another digest. Objects live
 * under `blobs/<key>` in the bucket. Configured only from the standard variables
 * (`AWS_ENDPOINT_URL_S3`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
 * `BUCKET_NAME`) plus `SEALPOST_S3_PATH_STYLE` and `SEALPOST_S3_PUBLIC_URL` (the endpoint as clients
 * reach it, for presigned URLs, when the relay reaches the bucket by another name).
 */

import { AwsClient } from "aws4fetch";
import { fromBase64, fromBase64Url, toBase64, toBase64Url, toHex } from "../base/encoding.ts";
import type { BlobExpectation, BlobStore, ObjectInfo, SignedRequest, UrlWindow } from "./mod.ts";

/** How to reach the bucket. */
export type S3Options = {
  /** Endpoint URL; unset → `https://s3.<region>.amazonaws.com`. */
  endpoint?: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  /** `endpoint/bucket/key` instead of `bucket.endpoint/key`; `auto` picks it for IPs and localhost. */
  pathStyle: "auto" | "true" | "false";
  /**
   * The endpoint as clients reach it, when that differs from `endpoint` (a Docker-internal host
   * name, a private network): presigned URLs are built and signed for this host, so the
   * signature matches the `Host` the client's request carries. Unset → `endpoint`.
   */
  publicEndpoint?: string;
};

/** The base URL of a bucket at `endpoint`: `endpoint/bucket` or `bucket.endpoint`. */
function bucketBase(endpoint: URL, bucket: string, pathStyle: S3Options["pathStyle"]): string {
  const host = endpoint.hostname;
  const ipOrLocal = host === "localhost" || /^[\d.]+$/.test(host) || host.startsWith("[");
  const path = pathStyle === "true" || (pathStyle === "auto" && ipOrLocal);
  const origin = path
    ? `${endpoint.origin}/${bucket}`
    : `${endpoint.protocol}//${bucket}.${endpoint.host}`;
  return origin + endpoint.pathname.replace(/\/$/, "");
}

/** SigV4's timestamp format (`20260101T000000Z`) for a time in ms. */
function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[:-]|\.\d{3}/g, "");
}

/** Blobs in an S3-compatible bucket, moved through presigned URLs. */
export class S3BlobStore implements BlobStore {
  readonly kind = "s3";
  readonly location: string;
  readonly #client: AwsClient;
  readonly #base: string;
  readonly #publicBase: string;

  constructor(options: S3Options) {
    const endpoint = new URL(options.endpoint ?? `https://s3.${options.region}.amazonaws.com`);
    this.#base = bucketBase(endpoint, options.bucket, options.pathStyle);
    this.#publicBase = options.publicEndpoint
      ? bucketBase(new URL(options.publicEndpoint), options.bucket, options.pathStyle)
      : this.#base;
    this.location = `s3 bucket ${options.bucket} at ${endpoint.origin}`;
    this.#client = new AwsClient({
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
      service: "s3",
      region: options.region,
      retries: 2,
    });
  }

  #objectUrl(key: string, base = this.#base): string {
    if (!/^[A-Za-z0-9_-]+$/.test(key)) throw new Error(`Not a blob key: ${key}`);
    return `${base}/blobs/${key}`;
  }

  async #presign(
    method: "PUT" | "GET",
    key: string,
    window: UrlWindow,
    headers: Record<string, string> = {},
  ): Promise<string> {
    const url = new URL(this.#objectUrl(key, this.#publicBase));
    url.searchParams.set("X-Amz-Expires", String(Math.max(1, Math.floor(window.ttlMs / 1000))));
    const signed = await this.#client.sign(url.toString(), {
      method,
      headers,
      aws: { signQuery: true, allHeaders: true, datetime: amzDate(window.now) },
    });
    return signed.url;
  }

  async uploadUrl(key: string, expect: BlobExpectation, window: UrlWindow): Promise<SignedRequest> {
    const digest = fromBase64Url(expect.sha256);
    if (!digest || digest.length !== 32) throw new Error("sha256 must be a 32-byte digest");
    // The client must send these; content-length comes from the body itself (fetch sets it).
    const headers = {
      "x-amz-checksum-sha256": toBase64(digest),
      "x-amz-content-sha256": toHex(digest),
    };
    const url = await this.#presign("PUT", key, window, {
      ...headers,
      "content-length": String(expect.size),
    });
    return { url, method: "PUT", headers };
  }

  downloadUrl(key: string, window: UrlWindow): Promise<string> {
    return this.#presign("GET", key, window);
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const response = await this.#client.fetch(this.#objectUrl(key), {
      method: "HEAD",
      headers: { "x-amz-checksum-mode": "ENABLED" },
    });
    await response.body?.cancel();
    if (response.status === 404) return null;
    if (!response.ok) throw new Error(`S3 HEAD answered ${response.status}`);
    const checksum = response.headers.get("x-amz-checksum-sha256");
    // Not a plain base64 digest (e.g. a multipart composite `…-3`): unknown.
    const digest = checksum ? fromBase64(checksum) : null;
    const sha256 = digest ? toBase64Url(digest) : null;
    return { size: Number(response.headers.get("content-length") ?? NaN), sha256 };
  }

  async read(key: string): Promise<ReadableStream<Uint8Array> | null> {
    const response = await this.#client.fetch(this.#objectUrl(key), { method: "GET" });
    if (response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new Error(`S3 GET answered ${response.status}`);
    }
    return response.body;
  }

  async delete(key: string): Promise<void> {
    const response = await this.#client.fetch(this.#objectUrl(key), { method: "DELETE" });
    await response.body?.cancel();
    if (!response.ok && response.status !== 404) {
      throw new Error(`S3 DELETE answered ${response.status}`);
    }
  }

  async check(): Promise<void> {
    const response = await this.#client.fetch(`${this.#base}/`, { method: "HEAD" });
    await response.body?.cancel();
    if (!response.ok) {
      throw new Error(`the bucket answered ${response.status} to HEAD (exists? credentials?)`);
    }
  }
}

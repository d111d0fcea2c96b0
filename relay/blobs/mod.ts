/**
 * @module
 * The blob store port: dumb object I/O under opaque keys, and the signed URLs through which
 * clients move the bytes without the relay in the way. No policy lives here (ids, quotas,
 * membership, lifetimes): {@link ./policy.ts} sits once above every implementation. The
 * filesystem store (`fs.ts`) serves its URLs from the relay itself; the S3 store (`s3.ts`) hands
 * out presigned URLs of any S3-compatible service.
 */

/** What an upload must match; both are bound into the upload URL. */
export type BlobExpectation = {
  /** Exact body length in bytes. */
  size: number;
  /** base64url (no padding) of the raw SHA-256 digest of the body. */
  sha256: string;
};

/** A request the client makes itself: method, URL and the headers it must send. */
export type SignedRequest = { url: string; method: "PUT" | "GET"; headers: Record<string, string> };

/** When a signed URL is issued and how long it stays valid. */
export type UrlWindow = { now: number; ttlMs: number };

/** What the store knows about a stored object. */
export type ObjectInfo = {
  size: number;
  /**
   * The SHA-256 (base64url) when the store itself verified it on upload and reports it; null
   * when it cannot say, and a caller that must be sure hashes {@link BlobStore.read}.
   */
  sha256: string | null;
};

/**
 * A blob store.
 *
 * Guarantee: an upload through {@link uploadUrl} stores the whole body or nothing, and the store
 * refuses (403 or 400, nothing stored) a body whose length differs from the bound size, a
 * tampered URL, or one used after it expired. Whether a body with the wrong SHA-256 is refused
 * depends on the store (the filesystem store and S3 services that check `x-amz-content-sha256`
 * refuse it); {@link stat} says whether the store vouches for the digest, so the policy above can
 * verify the rest. Keys are opaque `[A-Za-z0-9_-]` strings; deleting a missing key succeeds.
 */
export interface BlobStore {
  /** `fs` or `s3`, for logs, metrics and `doctor`. */
  readonly kind: "fs" | "s3";
  /** Where the objects live, without secrets. */
  readonly location: string;
  /** A URL (and headers) that accepts exactly one body matching `expect` until it expires. */
  uploadUrl(key: string, expect: BlobExpectation, window: UrlWindow): Promise<SignedRequest>;
  /** A URL that serves the object until it expires. */
  downloadUrl(key: string, window: UrlWindow): Promise<string>;
  /** Size (and, when vouched for, SHA-256) of a stored object, or null when there is none. */
  stat(key: string): Promise<ObjectInfo | null>;
  /** The object's bytes as a stream, or null when there is none. */
  read(key: string): Promise<ReadableStream<Uint8Array> | null>;
  /** Removes the object; succeeds when it is already gone. */
  delete(key: string): Promise<void>;
  /** Throws with a clear message when the store cannot be used (doctor, start). */
  check(): Promise<void>;
}

/**
 * A store whose signed URLs point at the relay itself, which must route them to this store
 * (`PUT`/`GET /v1/blobs/:id/data?exp=&sig=`).
 */
export interface LocalBlobStore extends BlobStore {
  /** True when `sig` is this store's signature of `method`, `key` and `exp` and `exp` > `now`. */
  verify(
    method: "PUT" | "GET",
    key: string,
    exp: number,
    sig: string,
    now: number,
  ): Promise<boolean>;
  /**
   * Streams `body` into the object, never holding it whole in memory; the object appears only
   * when the body matched `expect` exactly, else it throws {@link BlobMismatchError} and nothing
   * is stored.
   */
  write(key: string, body: ReadableStream<Uint8Array>, expect: BlobExpectation): Promise<void>;
}

/** True for a store that serves its own URLs. */
export function isLocal(store: BlobStore): store is LocalBlobStore {
  return "write" in store && "verify" in store;
}

/** A body whose size or SHA-256 differs from what was declared. */
export class BlobMismatchError extends Error {
  override name = "BlobMismatchError";
  /** `tooLarge`: the body ran past the declared size (reading stopped there). */
  constructor(message: string, readonly tooLarge = false) {
    super(message);
  }
}

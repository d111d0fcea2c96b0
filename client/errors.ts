/**
 * @module
 * The error an HTTP call of the relay throws: the protocol's error code, the HTTP status and the
 * retry hint — also for answers that are not the relay's JSON (a proxy's error page).
 */

/** An error answer from the relay. */
export class SealpostError extends Error {
  override name = "SealpostError";
  /** The HTTP status. */
  readonly status: number;
  /** The protocol error code (`not_found`, `rate_limited`, …). */
  readonly code: string;
  /** The relay's retry hint (`retry_after_ms`), when it gave one. */
  readonly retryAfterMs?: number;

  constructor(status: number, code: string, message: string, retryAfterMs?: number) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The protocol's error code for an HTTP status, for answers that carry none. */
export function codeOfStatus(status: number): string {
  const codes: Record<number, string> = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
  };
  return codes[status] ?? "internal";
}

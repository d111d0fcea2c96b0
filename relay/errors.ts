/**
 * @module
 * The one error table of the protocol: each code with its HTTP status and default message.
 * Handlers throw {@link RelayError}; the HTTP error handler and the WebSocket frame handler turn
 * it into the PROTOCOL.md shape. Anything else thrown is logged and answered `500 internal`.
 */

/** Every error code of PROTOCOL.md with its HTTP status and a default message. */
export const ERRORS = {
  invalid_request: { status: 400, message: "The request is malformed" },
  unauthenticated: { status: 401, message: "Authentication failed" },
  unknown_device: { status: 401, message: "This device is not registered" },
  forbidden: { status: 403, message: "Not allowed" },
  device_revoked: { status: 403, message: "This device has been revoked" },
  registration_closed: { status: 403, message: "Registration is closed" },
  not_found: { status: 404, message: "Not found" },
  conflict: { status: 409, message: "Conflict" },
  too_large: { status: 413, message: "Too large" },
  quota_exceeded: { status: 413, message: "Storage quota exceeded" },
  rate_limited: { status: 429, message: "Too many requests" },
  internal: { status: 500, message: "Internal error" },
  unavailable: { status: 503, message: "Service unavailable" },
} as const;

/** A protocol error code. */
export type ErrorCode = keyof typeof ERRORS;

/** WebSocket close codes of PROTOCOL.md. */
export const CLOSE = {
  /** Not authenticated in time, or bad auth. */
  unauthenticated: 4001,
  /** Device revoked or removed. */
  revoked: 4003,
  /** Rate limit abuse. */
  rateLimitAbuse: 4008,
  /** Too slow a consumer; the client resumes from its cursor. */
  tooSlow: 4009,
  /** Frame too large. */
  tooLarge: 1009,
  /** Relay draining for a restart or deploy. */
  draining: 1001,
} as const;

/**
 * An error a client caused or must know about, carried to the wire as
 * `{"error":{"code","message","retry_after_ms"?}}` or a WebSocket error frame.
 *
 * @example
 * ```ts
 * throw new RelayError("not_found", "No such group");
 * ```
 */
export class RelayError extends Error {
  override name = "RelayError";
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].message,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.status = ERRORS[code].status;
  }

  /** The PROTOCOL.md HTTP error body. */
  toBody(): { error: { code: ErrorCode; message: string; retry_after_ms?: number } } {
    const error: { code: ErrorCode; message: string; retry_after_ms?: number } = {
      code: this.code,
      message: this.message,
    };
    if (this.retryAfterMs !== undefined) error.retry_after_ms = this.retryAfterMs;
    return { error };
  }
}

/** Shorthand for the many `404 not_found` answers that must not reveal existence. */
export function notFound(message = "Not found"): RelayError {
  return new RelayError("not_found", message);
}

/** Shorthand for `400 invalid_request`. */
export function invalid(message: string): RelayError {
  return new RelayError("invalid_request", message);
}

const UNAVAILABLE_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
]);

/**
 * True when `error` means the database cannot be reached right now (restart, failover, network):
 * the client should retry, so it is answered `503 unavailable` rather than `500 internal`.
 */
export function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  if (code && (UNAVAILABLE_CODES.has(code) || code.startsWith("08"))) return true;
  return error instanceof Error &&
    /ECONNREFUSED|Connection refused|connection.*(closed|terminated)/i
      .test(error.message);
}

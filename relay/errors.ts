/**
 * @module
 * The one error table of the protocol: each code with its HTTP status, WebSocket close code and
 * default message. Handlers throw {@link RelayError}; {@link describeError} is the one mapping
 * the HTTP error handler and the WebSocket frame handler share to turn anything thrown into the
 * PROTOCOL.md shape. Anything unexpected is logged and answered `500 internal`.
 */

/**
 * Every error code of PROTOCOL.md with its HTTP status, the WebSocket close code used when the
 * error ends a connection, and a default message. Two rows close a socket without being an
 * error a request can get (`too_slow`, `draining`): they have no HTTP status.
 */
export const ERRORS = {
  invalid_request: { status: 400, close: 1008, message: "The request is malformed" },
  unauthenticated: { status: 401, close: 4001, message: "Authentication failed" },
  unknown_device: { status: 401, close: 4001, message: "This device is not registered" },
  forbidden: { status: 403, close: 1008, message: "Not allowed" },
  device_revoked: { status: 403, close: 4003, message: "This device has been revoked" },
  registration_closed: { status: 403, close: 1008, message: "Registration is closed" },
  not_found: { status: 404, close: 1008, message: "Not found" },
  conflict: { status: 409, close: 1008, message: "Conflict" },
  too_large: { status: 413, close: 1009, message: "Too large" },
  quota_exceeded: { status: 413, close: 1008, message: "Storage quota exceeded" },
  rate_limited: { status: 429, close: 4008, message: "Too many requests" },
  internal: { status: 500, close: 1011, message: "Internal error" },
  unavailable: { status: 503, close: 1013, message: "Service unavailable" },
  /** A consumer too slow for live delivery; it reconnects and resumes from its cursor. */
  too_slow: { close: 4009, message: "too slow: reconnect and resume from your cursor" },
  /** The relay is draining for a restart or deploy. */
  draining: { close: 1001, message: "relay restarting" },
} as const;

type Row = (typeof ERRORS)[keyof typeof ERRORS];

/** A protocol error code: a row of {@link ERRORS} with an HTTP status. */
export type ErrorCode = {
  [K in keyof typeof ERRORS]: (typeof ERRORS)[K] extends { status: number } ? K : never;
}[keyof typeof ERRORS];

/** A reason a WebSocket is closed: any row of {@link ERRORS}. */
export type CloseReason = keyof typeof ERRORS;

/** The WebSocket close code of a row of the error table. */
export function closeCode(reason: CloseReason): number {
  return (ERRORS[reason] as Row).close;
}

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
  toBody(): ErrorBody {
    const error: { code: ErrorCode; message: string; retry_after_ms?: number } = {
      code: this.code,
      message: this.message,
    };
    if (this.retryAfterMs !== undefined) error.retry_after_ms = this.retryAfterMs;
    return { error };
  }
}

/** The PROTOCOL.md error body. */
export type ErrorBody = { error: { code: ErrorCode; message: string; retry_after_ms?: number } };

/** How an error is answered on either transport, from {@link describeError}. */
export type ErrorAnswer = {
  /** The error as the client sees it. */
  error: RelayError;
  /** HTTP status. */
  status: number;
  /** WebSocket close code, when the error ends the connection. */
  close: number;
  body: ErrorBody;
  /** True when the cause was not a {@link RelayError} nor an outage: log it with context. */
  unexpected: boolean;
};

/**
 * The one mapping from anything thrown to its answer, shared by the HTTP error handler and the
 * WebSocket frame handler: a {@link RelayError} as it is; a full disk as `503 unavailable` (retry
 * in 30 s); a database outage as `503 unavailable` (retry in a second); anything else as `500 internal`, without its details.
 */
export function describeError(thrown: unknown): ErrorAnswer {
  let error: RelayError;
  let unexpected = false;
  if (thrown instanceof RelayError) error = thrown;
  else if (isDiskFull(thrown)) {
    error = new RelayError("unavailable", "The relay's disk is full; retry later", DISK_RETRY_MS);
  } else if (isUnavailable(thrown)) {
    error = new RelayError("unavailable", "The database is unreachable; retry shortly", 1000);
  } else {
    error = new RelayError("internal");
    unexpected = true;
  }
  return {
    error,
    status: error.status,
    close: closeCode(error.code),
    body: error.toBody(),
    unexpected,
  };
}

/** Shorthand for the many `404 not_found` answers that must not reveal existence. */
export function notFound(message = "Not found"): RelayError {
  return new RelayError("not_found", message);
}

/** Shorthand for `400 invalid_request`. */
export function invalid(message: string): RelayError {
  return new RelayError("invalid_request", message);
}

/** `409 conflict`: the account is already in `max` accepted groups. */
export function groupQuotaReached(max: number): RelayError {
  return new RelayError("conflict", `An account may be in at most ${max} groups`);
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

/** How long a client should wait before retrying a write refused for lack of disk space. */
export const DISK_RETRY_MS = 30_000;

/**
 * True when the database refused a write for lack of disk space: Postgres's `53100 disk_full`
 * (also what embedded PGlite reports), or the file system's `ENOSPC`.
 */
export function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  return code === "53100" || code === "ENOSPC" ||
    (error instanceof Error && /No space left on device/i.test(error.message));
}

/**
 * True when `error` means the database cannot be reached right now (restart, failover, network):
 * the client should retry, so it is answered `503 unavailable` rather than `500 internal`.
 */
export function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  if (code && (UNAVAILABLE_CODES.has(code) || code.startsWith("08"))) return true;
  // A full disk passes too (space returns, or the relay restarts): retry, not a 500.
  if (isDiskFull(error)) return true;
  return error instanceof Error &&
    /ECONNREFUSED|Connection refused|connection.*(closed|terminated)/i
      .test(error.message);
}

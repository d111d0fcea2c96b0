/**
 * @module
 * The error an HTTP call of the relay throws: the protocol's error code, the HTTP status and the
 * retry hint — also for answers that are not the relay's JSON (a proxy's error page) — and
 * {@link readAnswer}, which every call reads its answer with.
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

/**
 * The JSON of a relay's answer, or the {@link SealpostError} it stands for: the relay's error
 * body when it sent one. A proxy in front of the relay (nginx, haproxy, Fly) may answer an error
 * itself with an HTML page: that becomes an error with the proxy's status and the protocol's code
 * for it (`unavailable` for 502/503/504, so callers retry it like the relay's own 503) and its
 * `Retry-After`, never a `SyntaxError`.
 */
// deno-lint-ignore no-explicit-any
export async function readAnswer(response: Response): Promise<any> {
  const text = await response.text();
  // deno-lint-ignore no-explicit-any
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      throw new SealpostError(
        response.status,
        response.ok ? "internal" : codeOfStatus(response.status),
        `${response.statusText || "Unexpected answer"} (not a Sealpost JSON body)`,
        Number(response.headers.get("retry-after")) * 1000 || undefined,
      );
    }
  }
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new SealpostError(
      response.status,
      error.code ?? "internal",
      error.message ?? response.statusText,
      error.retry_after_ms,
    );
  }
  return data;
}

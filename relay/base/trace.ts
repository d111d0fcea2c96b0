/**
 * @module
 * Tracing through the OpenTelemetry API. With `OTEL_DENO=true` Deno exports spans over OTLP
 * (and traces every HTTP request by itself); without it the tracer is a no-op that costs next to
 * nothing. The relay adds spans for the WebSocket path — authentication, each send from frame to
 * acknowledgement, each group-commit transaction and each fan-out — so one slow message can be
 * followed: a send span carries its group and `seq`, the commit span the batch size.
 */

import { type Attributes, type Span, SpanStatusCode, trace } from "@opentelemetry/api";

const tracer = trace.getTracer("sealpost");

/**
 * Runs `fn` inside a span named `name`; the span ends when `fn` settles and records a thrown
 * error.
 *
 * @example
 * ```ts
 * const sent = await withSpan("sealpost.send", { "sealpost.group": group }, (span) => send(...));
 * ```
 */
export function withSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  // Chained, not an async function: a send waits in the commit queue inside this span, and a
  // suspended async function would hold its frame for as long (part of the 4,321 bytes of heap a
  // queued send held; bench/README.md "Overload memory, a third look").
  return tracer.startActiveSpan(name, { attributes }, (span) => {
    let running: Promise<T>;
    try {
      running = fn(span);
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.then((value) => {
      span.end();
      return value;
    }, (error) => {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
      span.end();
      throw error;
    });
  });
}

/** Starts a span the caller ends (for work that is not one async function). */
export function startSpan(name: string, attributes: Attributes): Span {
  return tracer.startSpan(name, { attributes });
}

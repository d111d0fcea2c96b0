/**
 * @module
 * Structured logging: one JSON object per line when not on a TTY, a readable line on a TTY.
 * Callers pass fields, never secrets: tokens, keys, bodies and invite codes stay out of logs.
 * Who did something is kept out too unless the operator opts in (`SEALPOST_LOG_IDENTITIES`):
 * a logger made with `redact` drops those fields from every line, and request paths have their
 * ids replaced by {@link redactPath} (docs/privacy.md lists every field).
 */

/** Fields that name a device, an account or a client address: dropped unless opted in. */
export const IDENTITY_FIELDS: readonly string[] = [
  "device",
  "account",
  "ip",
  "by",
  "from",
  "address",
];

/**
 * A request path with every id-like segment (16+ base64url characters: keys, group, blob and
 * invite ids) replaced by `:id`.
 *
 * @example
 * ```ts
 * redactPath("/v1/accounts/" + "A".repeat(43) + "/devices"); // "/v1/accounts/:id/devices"
 * ```
 */
export function redactPath(path: string): string {
  return path.split("/").map((s) => /^[A-Za-z0-9_-]{16,}$/.test(s) ? ":id" : s).join("/");
}

/** Log severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger bound to a level and format; `child` adds fields to every line. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/** Where log lines go; tests capture them. */
export type LogSink = (line: string, level: LogLevel) => void;

const defaultSink: LogSink = (line, level) => {
  if (level === "error" || level === "warn") console.error(line);
  else console.log(line);
};

/**
 * Creates a logger.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: "info", format: "json" });
 * log.info("listening", { port: 8080 });
 * ```
 */
export function createLogger(options: {
  level: LogLevel;
  format: "pretty" | "json";
  sink?: LogSink;
  fields?: Record<string, unknown>;
  /** Field names left out of every line (e.g. {@link IDENTITY_FIELDS}). */
  redact?: readonly string[];
}): Logger {
  const sink = options.sink ?? defaultSink;
  const min = ORDER[options.level];
  const base = options.fields ?? {};
  const redact = options.redact ?? [];
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const all = { ...base, ...fields };
    for (const key of redact) delete all[key];
    // An admin actor names its address after `@` (`admin:1a2b3c4d@203.0.113.7`).
    if (redact.length > 0 && typeof all.actor === "string") {
      all.actor = all.actor.replace(/@.*$/, "");
    }
    if (options.format === "json") {
      sink(
        JSON.stringify({ time: new Date().toISOString(), level, msg, ...all }, errorSafe),
        level,
      );
    } else {
      const extra = Object.entries(all).map(([k, v]) =>
        `${k}=${typeof v === "string" ? v : JSON.stringify(v, errorSafe)}`
      );
      const time = new Date().toISOString().slice(11, 23);
      sink(
        `${time} ${level.toUpperCase().padEnd(5)} ${msg}${extra.length ? " " : ""}${
          extra.join(" ")
        }`,
        level,
      );
    }
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createLogger({ ...options, sink, fields: { ...base, ...fields } }),
  };
}

function errorSafe(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack };
  }
  if (typeof value === "bigint") return value.toString();
  return value;
}

/** A logger that drops everything (tests that do not look at logs). */
export const silentLogger: Logger = createLogger({
  level: "error",
  format: "json",
  sink: () => {},
});

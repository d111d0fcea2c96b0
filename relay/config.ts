/**
 * @module
 * The one place that reads configuration. A table of settings (environment variable, `--flag`,
 * default, description, parser) produces a frozen, typed {@link Config}. A bad value throws a
 * {@link ConfigError} whose message is one line naming the variable, the value and what is
 * accepted; `main.ts` prints it and exits. `Deno.env` is read nowhere else.
 */

/** A parsed rate limit: `count` events per `perMs`, or `null` when disabled (`off`). */
export type Rate = { count: number; perMs: number } | null;

/** Thrown for a bad configuration value; its message is the single line shown to the user. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
};

/**
 * Parses a duration like `500ms`, `90s`, `15m`, `24h`, `30d` into milliseconds.
 *
 * @example
 * ```ts
 * parseDuration("15m"); // 900000
 * ```
 */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) throw new Error("expected a duration like 500ms, 90s, 15m, 24h or 30d");
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2]]);
}

/** Parses a size like `64KiB` or `100MiB` into bytes. */
export function parseSize(text: string): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match?.[2].toLowerCase() ?? "";
  if (!match || !(unit in SIZE_UNITS)) {
    throw new Error("expected a size like 65536, 64KiB or 100MiB");
  }
  return Number(match[1]) * SIZE_UNITS[unit];
}

/** Parses a rate like `100/min`, `30/s`, `1000/h`, or `off`. */
export function parseRate(text: string): Rate {
  const value = text.trim().toLowerCase();
  if (value === "off") return null;
  const match = /^(\d+)\/(s|sec|min|m|h|hour)$/.exec(value);
  if (!match || Number(match[1]) === 0) {
    throw new Error("expected a rate like 100/min, 5/s, 1000/h, or off");
  }
  const per = { s: 1000, sec: 1000, min: 60_000, m: 60_000, h: 3_600_000, hour: 3_600_000 };
  return { count: Number(match[1]), perMs: per[match[2] as keyof typeof per] };
}

function parsePort(text: string): number {
  const port = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error("expected a port number from 0 to 65535");
  }
  return port;
}

function oneOf<T extends string>(...values: T[]): (text: string) => T {
  return (text) => {
    if (!values.includes(text as T)) throw new Error(`expected one of ${values.join(", ")}`);
    return text as T;
  };
}

function parseUrl(text: string): string {
  try {
    const url = new URL(text);
    return url.toString().replace(/\/$/, "");
  } catch {
    throw new Error("expected an absolute URL like https://relay.example.com");
  }
}

function parseDatabaseUrl(text: string): string {
  if (!/^postgres(ql)?:\/\//.test(text)) {
    throw new Error("expected a URL like postgres://user:password@host:5432/dbname");
  }
  return text;
}

function parseBool(text: string): boolean {
  const value = text.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(value)) return true;
  if (["false", "0", "no", "off"].includes(value)) return false;
  throw new Error("expected true or false");
}

function parseContact(text: string): string {
  if (/^mailto:[^@\s]+@[^@\s]+$/.test(text.trim())) return text.trim();
  if (/^https?:\/\//.test(text.trim())) return parseUrl(text);
  throw new Error("expected a mailto: address or an https:// URL");
}

function parseList(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

function parseOptionalDuration(text: string): number | null {
  if (text.trim() === "off") return null;
  return parseDuration(text);
}

function parseCount(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) {
    throw new Error("expected a whole number from 1");
  }
  return Number(text);
}

function parseMaxTtl(text: string): number | null {
  if (text.trim() === "forever") return null;
  return parseDuration(text);
}

const text = (value: string) => value;

/** One row of the settings table: how a setting is named, defaulted, described and parsed. */
type Setting<T> = {
  env: string;
  flag: string;
  default: string | undefined;
  help: string;
  parse: (value: string) => T;
};

function setting<T>(
  env: string,
  flag: string,
  defaultValue: string | undefined,
  help: string,
  parse: (value: string) => T,
): Setting<T> {
  return { env, flag, default: defaultValue, help, parse };
}

/** Every setting Sealpost reads, in the order `serve --help` lists them. */
export const SETTINGS = {
  port: setting("PORT", "port", "8080", "port to listen on", parsePort),
  host: setting("SEALPOST_HOST", "host", "0.0.0.0", "address to listen on", text),
  dataDir: setting(
    "SEALPOST_DATA_DIR",
    "data-dir",
    "./data",
    "embedded database and blob files",
    text,
  ),
  publicUrl: setting(
    "SEALPOST_PUBLIC_URL",
    "public-url",
    undefined,
    "base of signed URLs and admin links (default http://localhost:$PORT)",
    parseUrl,
  ),
  databaseUrl: setting(
    "DATABASE_URL",
    "database-url",
    undefined,
    "server Postgres; unset → embedded PGlite in $SEALPOST_DATA_DIR/pg",
    parseDatabaseUrl,
  ),
  databaseReplicaUrl: setting(
    "DATABASE_REPLICA_URL",
    "database-replica-url",
    undefined,
    "optional read replica for backlog reads",
    parseDatabaseUrl,
  ),
  blobStore: setting("SEALPOST_BLOB_STORE", "blob-store", "fs", "fs or s3", oneOf("fs", "s3")),
  registration: setting(
    "SEALPOST_REGISTRATION",
    "registration",
    "open",
    "initial registration mode: open, invite or closed",
    oneOf("open", "invite", "closed"),
  ),
  retention: setting(
    "SEALPOST_RETENTION",
    "retention",
    "30d",
    "default group retention",
    parseDuration,
  ),
  maxTtl: setting(
    "SEALPOST_MAX_TTL",
    "max-ttl",
    "365d",
    "cap on any TTL; forever keeps history until deleted",
    parseMaxTtl,
  ),
  inactiveAfter: setting(
    "SEALPOST_INACTIVE_AFTER",
    "inactive-after",
    "90d",
    "a device with no activity this long is inactive",
    parseDuration,
  ),
  deleteAfter: setting(
    "SEALPOST_DELETE_AFTER",
    "delete-after",
    "180d",
    "a device with no activity this long is deleted",
    parseDuration,
  ),
  sweepInterval: setting(
    "SEALPOST_SWEEP_INTERVAL",
    "sweep-interval",
    "60s",
    "how often expiry and cleanup run",
    parseDuration,
  ),
  maxMessageBytes: setting(
    "SEALPOST_MAX_MESSAGE_BYTES",
    "max-message-bytes",
    "64KiB",
    "largest message body (decoded)",
    parseSize,
  ),
  maxBlobBytes: setting(
    "SEALPOST_MAX_BLOB_BYTES",
    "max-blob-bytes",
    "100MiB",
    "largest blob",
    parseSize,
  ),
  maxAccountBytes: setting(
    "SEALPOST_MAX_ACCOUNT_BYTES",
    "max-account-bytes",
    "1GiB",
    "blob storage quota per account (uploads in progress count)",
    parseSize,
  ),
  s3Endpoint: setting(
    "AWS_ENDPOINT_URL_S3",
    "s3-endpoint",
    undefined,
    "S3-compatible endpoint (Tigris, R2, MinIO); unset → AWS S3 in AWS_REGION",
    parseUrl,
  ),
  s3Region: setting(
    "AWS_REGION",
    "s3-region",
    "us-east-1",
    "S3 region (auto for R2, Tigris)",
    text,
  ),
  s3AccessKeyId: setting("AWS_ACCESS_KEY_ID", "s3-access-key-id", undefined, "S3 access key", text),
  s3SecretAccessKey: setting(
    "AWS_SECRET_ACCESS_KEY",
    "s3-secret-access-key",
    undefined,
    "S3 secret key",
    text,
  ),
  s3Bucket: setting("BUCKET_NAME", "bucket-name", undefined, "S3 bucket for blobs", text),
  s3PathStyle: setting(
    "SEALPOST_S3_PATH_STYLE",
    "s3-path-style",
    "auto",
    "S3 URLs as endpoint/bucket/key (MinIO): true, false, or auto (for IP and localhost endpoints)",
    oneOf("auto", "true", "false"),
  ),
  rateSend: setting(
    "SEALPOST_RATE_SEND",
    "rate-send",
    "100/min",
    "sends per device",
    parseRate,
  ),
  ratePoll: setting(
    "SEALPOST_RATE_POLL",
    "rate-poll",
    "200/min",
    "inbox polls per device",
    parseRate,
  ),
  rateAuth: setting(
    "SEALPOST_RATE_AUTH",
    "rate-auth",
    "30/min",
    "auth calls per client IP",
    parseRate,
  ),
  rateClaim: setting(
    "SEALPOST_RATE_CLAIM",
    "rate-claim",
    "60/min",
    "key package claims per device",
    parseRate,
  ),
  tokenTtl: setting(
    "SEALPOST_TOKEN_TTL",
    "token-ttl",
    "24h",
    "session token lifetime",
    parseDuration,
  ),
  adminPassword: setting(
    "SEALPOST_ADMIN_PASSWORD",
    "admin-password",
    undefined,
    "admin login password; unset → a one-time setup link is logged at start",
    text,
  ),
  metricsToken: setting(
    "SEALPOST_METRICS_TOKEN",
    "metrics-token",
    undefined,
    "bearer token for /metrics; unset → open",
    text,
  ),
  instanceId: setting(
    "SEALPOST_INSTANCE_ID",
    "instance-id",
    undefined,
    "this instance's id (default $FLY_MACHINE_ID, else hostname:port)",
    text,
  ),
  region: setting(
    "SEALPOST_REGION",
    "region",
    undefined,
    "this instance's region (default $FLY_REGION)",
    text,
  ),
  backupInterval: setting(
    "SEALPOST_BACKUP_INTERVAL",
    "backup-interval",
    "off",
    "write a backup this often (e.g. 24h) into SEALPOST_BACKUP_DIR; off disables",
    parseOptionalDuration,
  ),
  backupDir: setting(
    "SEALPOST_BACKUP_DIR",
    "backup-dir",
    undefined,
    "where scheduled backups go (default $SEALPOST_DATA_DIR/backups)",
    text,
  ),
  backupKeep: setting(
    "SEALPOST_BACKUP_KEEP",
    "backup-keep",
    "7",
    "how many scheduled backups to keep",
    parseCount,
  ),
  drainTimeout: setting(
    "SEALPOST_DRAIN_TIMEOUT",
    "drain-timeout",
    "10s",
    "longest a graceful stop may take before exiting anyway",
    parseDuration,
  ),
  vapidSubject: setting(
    "SEALPOST_VAPID_SUBJECT",
    "vapid-subject",
    undefined,
    "Web Push contact (mailto: or https:) in the VAPID token (default $SEALPOST_PUBLIC_URL)",
    parseContact,
  ),
  apnsKeyFile: setting(
    "SEALPOST_APNS_KEY_FILE",
    "apns-key-file",
    undefined,
    "APNs auth key (.p8 file from Apple) for iOS push",
    text,
  ),
  apnsKey: setting(
    "SEALPOST_APNS_KEY",
    "apns-key",
    undefined,
    "the APNs .p8 key's contents, instead of SEALPOST_APNS_KEY_FILE",
    text,
  ),
  apnsKeyId: setting("SEALPOST_APNS_KEY_ID", "apns-key-id", undefined, "APNs key id", text),
  apnsTeamId: setting(
    "SEALPOST_APNS_TEAM_ID",
    "apns-team-id",
    undefined,
    "Apple developer team id",
    text,
  ),
  apnsTopics: setting(
    "SEALPOST_APNS_TOPIC",
    "apns-topic",
    undefined,
    "bundle ids APNs targets may name (comma-separated); unset → any",
    parseList,
  ),
  fcmServiceAccountFile: setting(
    "SEALPOST_FCM_SERVICE_ACCOUNT_FILE",
    "fcm-service-account-file",
    undefined,
    "Firebase service account JSON file for FCM push",
    text,
  ),
  fcmServiceAccount: setting(
    "SEALPOST_FCM_SERVICE_ACCOUNT",
    "fcm-service-account",
    undefined,
    "the service account JSON itself, instead of SEALPOST_FCM_SERVICE_ACCOUNT_FILE",
    text,
  ),
  pushMinInterval: setting(
    "SEALPOST_PUSH_MIN_INTERVAL",
    "push-min-interval",
    "30s",
    "least time between two wake-ups of one device",
    parseDuration,
  ),
  unifiedPushAllowPrivate: setting(
    "SEALPOST_UNIFIEDPUSH_ALLOW_PRIVATE",
    "unifiedpush-allow-private",
    "false",
    "allow push endpoints on private or loopback addresses (a distributor on your LAN)",
    parseBool,
  ),
  logLevel: setting(
    "SEALPOST_LOG_LEVEL",
    "log-level",
    "info",
    "debug, info, warn or error",
    oneOf("debug", "info", "warn", "error"),
  ),
  logFormat: setting(
    "SEALPOST_LOG_FORMAT",
    "log-format",
    undefined,
    "pretty or json (default pretty on a TTY, else json)",
    oneOf("pretty", "json"),
  ),
} as const;

/** The validated, frozen configuration every part of the relay receives. */
export type Config = {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly publicUrl: string;
  readonly databaseUrl?: string;
  readonly databaseReplicaUrl?: string;
  readonly blobStore: "fs" | "s3";
  readonly registration: "open" | "invite" | "closed";
  /** Default group retention in milliseconds. */
  readonly retention: number;
  /** Cap on any TTL in milliseconds; `null` is forever. */
  readonly maxTtl: number | null;
  readonly inactiveAfter: number;
  readonly deleteAfter: number;
  readonly sweepInterval: number;
  readonly maxMessageBytes: number;
  readonly maxBlobBytes: number;
  /** Blob bytes one account may store, uploads in progress included. */
  readonly maxAccountBytes: number;
  readonly s3Endpoint?: string;
  readonly s3Region: string;
  readonly s3AccessKeyId?: string;
  readonly s3SecretAccessKey?: string;
  readonly s3Bucket?: string;
  readonly s3PathStyle: "auto" | "true" | "false";
  readonly rateSend: Rate;
  readonly ratePoll: Rate;
  readonly rateAuth: Rate;
  readonly rateClaim: Rate;
  readonly tokenTtl: number;
  readonly adminPassword?: string;
  readonly metricsToken?: string;
  readonly instanceId: string;
  readonly region?: string;
  /** Interval of scheduled backups in ms; null when off. */
  readonly backupInterval: number | null;
  readonly backupDir: string;
  readonly backupKeep: number;
  readonly drainTimeout: number;
  /** VAPID `sub` claim; unset → the public URL. */
  readonly vapidSubject?: string;
  readonly apnsKeyFile?: string;
  readonly apnsKey?: string;
  readonly apnsKeyId?: string;
  readonly apnsTeamId?: string;
  /** Bundle ids APNs targets may name; unset → any. */
  readonly apnsTopics?: string[];
  readonly fcmServiceAccountFile?: string;
  readonly fcmServiceAccount?: string;
  /** Least time between two wake-ups of one device, in ms. */
  readonly pushMinInterval: number;
  /** Push endpoints on private or loopback addresses are allowed. */
  readonly unifiedPushAllowPrivate: boolean;
  readonly logLevel: "debug" | "info" | "warn" | "error";
  readonly logFormat?: "pretty" | "json";
  /** The size of the send burst a device may use before its rate applies. */
  readonly sendBurst: number;
  /** Live WebSocket connections one device may hold. */
  readonly maxConnectionsPerDevice: number;
  readonly maxGroupMembers: number;
  readonly maxGroupsPerAccount: number;
  /** Buffered bytes on one WebSocket before it stops getting live frames and is closed 4009. */
  readonly maxSocketBufferBytes: number;
  /** Group commit window: how long a send waits for others to join its transaction. */
  readonly commitWindowMs: number;
  /** How long a WebSocket client has to send its `auth` frame. */
  readonly authTimeoutMs: number;
};

/** Defaults for the settings that have no environment variable of their own. */
const FIXED = {
  sendBurst: 20,
  maxConnectionsPerDevice: 5,
  maxGroupMembers: 1000,
  maxGroupsPerAccount: 10_000,
  maxSocketBufferBytes: 4 * 1024 * 1024,
  commitWindowMs: 1,
  authTimeoutMs: 10_000,
};

/**
 * Builds the configuration from environment variables and `--flag` values (flags win).
 *
 * @example
 * ```ts
 * const config = loadConfig({ PORT: "9000" }, { "data-dir": "/tmp/x" });
 * ```
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  flags: Record<string, string | undefined> = {},
  overrides: Partial<Config> = {},
): Config {
  const out: Record<string, unknown> = { ...FIXED };
  for (const [key, def] of Object.entries(SETTINGS)) {
    // An empty value (`PORT=` in a compose file) means unset: the default applies.
    const fromFlag = flags[def.flag] || undefined;
    const raw = fromFlag ?? (env[def.env] || undefined) ?? def.default;
    if (raw === undefined) {
      out[key] = undefined;
      continue;
    }
    try {
      out[key] = (def.parse as (v: string) => unknown)(raw);
    } catch (error) {
      const source = fromFlag !== undefined ? `--${def.flag}` : def.env;
      const shown = key === "adminPassword" || key === "metricsToken" ||
          key === "s3SecretAccessKey" || key === "apnsKey" || key === "fcmServiceAccount"
        ? "***"
        : raw;
      throw new ConfigError(
        `Cannot parse ${source}: ${(error as Error).message}, got '${shown}'`,
      );
    }
  }
  if (out.publicUrl === undefined) out.publicUrl = `http://localhost:${out.port}`;
  out.instanceId ??= env.FLY_MACHINE_ID || `${hostname()}:${out.port}`;
  out.region ??= env.FLY_REGION || undefined;
  out.backupDir ??= `${out.dataDir}/backups`;
  Object.assign(out, overrides);
  const config = out as Config;
  if (config.deleteAfter <= config.inactiveAfter) {
    throw new ConfigError(
      `Cannot use SEALPOST_DELETE_AFTER: it must be longer than SEALPOST_INACTIVE_AFTER, got '${
        flags["delete-after"] || env.SEALPOST_DELETE_AFTER || SETTINGS.deleteAfter.default
      }'`,
    );
  }
  if (config.blobStore === "s3") {
    const missing = [
      ["AWS_ACCESS_KEY_ID", config.s3AccessKeyId],
      ["AWS_SECRET_ACCESS_KEY", config.s3SecretAccessKey],
      ["BUCKET_NAME", config.s3Bucket],
    ].filter(([, value]) => !value).map(([name]) => name);
    if (missing.length > 0) {
      throw new ConfigError(
        `Cannot use SEALPOST_BLOB_STORE=s3: it needs ${missing.join(", ")}, got them unset`,
      );
    }
  }
  const apns = [
    ["SEALPOST_APNS_KEY_FILE or SEALPOST_APNS_KEY", config.apnsKeyFile ?? config.apnsKey],
    ["SEALPOST_APNS_KEY_ID", config.apnsKeyId],
    ["SEALPOST_APNS_TEAM_ID", config.apnsTeamId],
  ];
  const apnsMissing = apns.filter(([, value]) => !value).map(([name]) => name);
  if (apnsMissing.length > 0 && apnsMissing.length < apns.length) {
    throw new ConfigError(
      `Cannot use APNs push: it needs ${apnsMissing.join(", ")}, got them unset`,
    );
  }
  return Object.freeze(config);
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}

/** Reads the process environment; the only call of `Deno.env` in the relay. */
export function readEnv(): Record<string, string> {
  return Deno.env.toObject();
}

/** Lists every setting for `serve --help` and the configuration docs. */
export function describeSettings(): string {
  const lines = Object.values(SETTINGS).map((s) => {
    // Long names still get a space after them.
    const left = `  --${s.flag} `.padEnd(26) + `${s.env} `.padEnd(28);
    const def = s.default === undefined ? "" : ` (default ${s.default})`;
    return `${left}${s.help}${def}`;
  });
  return lines.join("\n");
}

/**
 * @module
 * The table of every setting Sealpost reads: environment variable, `--flag`, default, meaning and
 * parser. `config.ts` reads it into a typed configuration; `serve --help` and
 * `docs/configuration.md` list it (a test keeps the doc in step).
 */

import {
  oneOf,
  parseBool,
  parseContact,
  parseCount,
  parseDatabaseUrl,
  parseDuration,
  parseList,
  parseMaxTtl,
  parseOptionalDuration,
  parsePort,
  parseRate,
  parseSize,
  parseTrustedProxies,
  parseUrl,
  text,
} from "./values.ts";

/** One row of the settings table: how a setting is named, defaulted, described and parsed. */
export type Setting<T> = {
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
  claimPerTarget: setting(
    "SEALPOST_CLAIM_PER_TARGET",
    "claim-per-target",
    "30/h",
    "one-time key packages of one device handed out; past it claims get its last resort",
    parseRate,
  ),
  trustedProxies: setting(
    "SEALPOST_TRUSTED_PROXIES",
    "trusted-proxies",
    undefined,
    "CIDR ranges (and fly) whose X-Forwarded-For/Forwarded/Fly-Client-IP are believed",
    parseTrustedProxies,
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

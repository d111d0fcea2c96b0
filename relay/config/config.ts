/**
 * @module
 * The one place that reads configuration. A table of settings (environment variable, `--flag`,
 * default, description, parser) produces a frozen, typed {@link Config}. A bad value throws a
 * {@link ConfigError} whose message is one line naming the variable, the value and what is
 * accepted; `main.ts` prints it and exits. `Deno.env` is read nowhere else.
 */

import { SETTINGS } from "./settings.ts";
import type { DiskReserve, Rate, TrustedProxies } from "./values.ts";

export { SETTINGS } from "./settings.ts";
export { parseDuration, parseRate, parseSize } from "./values.ts";
export type { DiskReserve, Rate, TrustedProxies } from "./values.ts";

/** Thrown for a bad configuration value; its message is the single line shown to the user. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

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
  /**
   * Bytes of sends waiting for their commit (bodies plus a fixed overhead each) past which a
   * send is refused with `unavailable` and `retry_after_ms`.
   */
  readonly commitQueueBytes: number;
  readonly maxBlobBytes: number;
  /** Blob bytes one account may store, uploads in progress included. */
  readonly maxAccountBytes: number;
  readonly s3Endpoint?: string;
  readonly s3Region: string;
  readonly s3AccessKeyId?: string;
  readonly s3SecretAccessKey?: string;
  readonly s3Bucket?: string;
  readonly s3PathStyle: "auto" | "true" | "false";
  /** The S3 endpoint as clients reach it (presigned URLs); unset → `s3Endpoint`. */
  readonly s3PublicUrl?: string;
  readonly rateSend: Rate;
  readonly ratePoll: Rate;
  readonly rateAuth: Rate;
  readonly rateClaim: Rate;
  /** One-time key packages of one device handed out per period before claims get its last resort. */
  readonly claimPerTarget: Rate;
  /** Proxies whose forwarding headers name the client; unset → the socket's address. */
  readonly trustedProxies?: TrustedProxies;
  /** Invitations one account may have pending (issue 16). */
  readonly maxPendingInvitations: number;
  /** Sealed sends per send capability. */
  readonly rateSealed: Rate;
  /** Sealed sends per client address. */
  readonly rateSealedAddress: Rate;
  /** Presence queries and events, server-wide. */
  readonly presence: "on" | "off";
  /** `last_seen_at` is rounded down to a multiple of this (ms). */
  readonly lastSeenGranularity: number;
  /** Logs may carry device/account ids and client addresses. */
  readonly logIdentities: boolean;
  /** How long client addresses stay in the audit log (ms). */
  readonly auditAddressRetention: number;
  /** WebSockets open but not yet authenticated, in total and per client address. */
  readonly maxPendingSockets: number;
  readonly maxPendingSocketsPerIp: number;
  readonly tokenTtl: number;
  /** How long a valid token is remembered in memory (ms; 0: never). */
  readonly tokenCacheTtl: number;
  readonly adminPassword?: string;
  readonly metricsToken?: string;
  /** A second, private port serving only `/metrics`, without the token; unset → none. */
  readonly metricsPort?: number;
  readonly instanceId: string;
  /** `FLY_MACHINE_ID` when running on a Fly machine (doctor warns about an embedded database). */
  readonly flyMachineId?: string;
  readonly region?: string;
  /** Interval of scheduled backups in ms; null when off. */
  readonly backupInterval: number | null;
  readonly backupDir: string;
  readonly backupKeep: number;
  readonly drainTimeout: number;
  /** Free space kept in the data directory (sends and blob uploads refused below it). */
  readonly diskReserve: DiskReserve;
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
 * Settings that hold secrets: each may instead be read from a file named by the variable plus
 * `_FILE` (`DATABASE_URL_FILE=/run/secrets/db_url`, as Docker and Kubernetes secrets mount them).
 * APNs and FCM credentials have their own `*_FILE` settings (`SEALPOST_APNS_KEY_FILE`,
 * `SEALPOST_FCM_SERVICE_ACCOUNT_FILE`). Values of all of them are never echoed in errors.
 */
export const SECRET_SETTINGS = [
  "databaseUrl",
  "databaseReplicaUrl",
  "s3AccessKeyId",
  "s3SecretAccessKey",
  "adminPassword",
  "metricsToken",
] as const satisfies readonly (keyof typeof SETTINGS)[];

const MASKED = new Set<string>([...SECRET_SETTINGS, "apnsKey", "fcmServiceAccount"]);

/** The contents of a `*_FILE` secret, without the one trailing newline editors add. */
function readSecretFile(variable: string, path: string): string {
  try {
    return Deno.readTextFileSync(path).replace(/\r?\n$/, "");
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "no such file" : (error as Error).message;
    throw new ConfigError(`Cannot read ${variable}: ${why}, got '${path}'`);
  }
}

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
    const fileVariable = `${def.env}_FILE`;
    const file = (SECRET_SETTINGS as readonly string[]).includes(key)
      ? env[fileVariable] || undefined
      : undefined;
    if (file !== undefined && env[def.env]) {
      throw new ConfigError(
        `Cannot use ${fileVariable}: ${def.env} is set too, got both (set one of them)`,
      );
    }
    const fromFile = file !== undefined && fromFlag === undefined
      ? readSecretFile(fileVariable, file)
      : undefined;
    const raw = fromFlag ?? (env[def.env] || undefined) ?? fromFile ?? def.default;
    if (raw === undefined) {
      out[key] = undefined;
      continue;
    }
    try {
      out[key] = (def.parse as (v: string) => unknown)(raw);
    } catch (error) {
      const source = fromFlag !== undefined
        ? `--${def.flag}`
        : fromFile !== undefined && !env[def.env]
        ? fileVariable
        : def.env;
      const shown = MASKED.has(key) ? "***" : raw;
      throw new ConfigError(
        `Cannot parse ${source}: ${(error as Error).message}, got '${shown}'`,
      );
    }
  }
  if (out.publicUrl === undefined) out.publicUrl = `http://localhost:${out.port}`;
  out.instanceId ??= env.FLY_MACHINE_ID || `${hostname()}:${out.port}`;
  out.region ??= env.FLY_REGION || undefined;
  out.flyMachineId = env.FLY_MACHINE_ID || undefined;
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

/** Lists every setting (or those of `keys`) for `--help` and the configuration docs. */
export function describeSettings(keys?: readonly (keyof typeof SETTINGS)[]): string {
  const rows = keys ? keys.map((key) => SETTINGS[key]) : Object.values(SETTINGS);
  const lines = rows.map((s) => {
    // Long names still get a space after them.
    const left = `  --${s.flag} `.padEnd(26) + `${s.env} `.padEnd(28);
    const def = s.default === undefined ? "" : ` (default ${s.default})`;
    return `${left}${s.help}${def}`;
  });
  return lines.join("\n");
}

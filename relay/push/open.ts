/**
 * @module
 * Builds the push senders the configuration allows — the one place that picks implementations.
 * Web Push and UnifiedPush need no credentials (the VAPID key is generated and stored on first
 * start); APNs needs a `.p8` key with its key id and team id; FCM a service account. Key files
 * are read and keys imported here, at start, so a missing file or a bad key stops the relay with
 * one line naming the setting instead of failing at the first push.
 */

import { importPKCS8 } from "jose";
import type { Clock } from "../base/clock.ts";
import { type Config, ConfigError } from "../config/config.ts";
import type { Db } from "../store/database.ts";
import type { AddressGuard } from "./address_guard.ts";
import { PinnedFetcher } from "./pinned_fetch.ts";
import { ApnsSender } from "./apns.ts";
import { FcmSender, parseServiceAccount } from "./fcm.ts";
import type { PushKind, PushSender } from "./mod.ts";
import { UnifiedPushSender } from "./unifiedpush.ts";
import { loadVapidKeys, VapidSigner } from "./vapid.ts";
import { WebPushSender } from "./webpush.ts";

/** Endpoints and trust for tests (a local APNs/FCM and a test CA); production uses defaults. */
export type PushEndpoints = {
  apnsProductionUrl?: string;
  apnsSandboxUrl?: string;
  fcmApiUrl?: string;
  /** PEM CA certificates trusted besides the system's, for every push request. */
  caCerts?: string[];
  /** Host name resolution for the address guard. */
  resolve?: (host: string) => Promise<string[]>;
};

/** The built senders and the VAPID public key. */
export type OpenedPush = {
  senders: Map<PushKind, PushSender>;
  vapidPublicKey: string;
  /** Closes every sender's HTTP client. */
  close(): void;
};

async function readSecret(file: string | undefined, value: string | undefined, env: string) {
  if (value) return value;
  try {
    return await Deno.readTextFile(file!);
  } catch (error) {
    throw new ConfigError(
      `Cannot read ${env}: ${
        (error as Error).message.split("\n")[0].replace(/: \w+ '.*'$/, "")
      }, got '${file}'`,
    );
  }
}

/**
 * Builds every configured sender.
 *
 * @example
 * ```ts
 * const { senders, vapidPublicKey } = await openPushSenders(config, db, clock, guard);
 * ```
 */
export async function openPushSenders(
  config: Config,
  db: Db,
  clock: Clock,
  guard: AddressGuard,
  endpoints: PushEndpoints = {},
): Promise<OpenedPush> {
  const senders = new Map<PushKind, PushSender>();
  try {
    return await open(config, db, clock, guard, endpoints, senders);
  } catch (error) {
    for (const sender of senders.values()) sender.close();
    throw error;
  }
}

/**
 * Reads and imports the configured APNs key and FCM service account the way `serve` does, then
 * lets them go: the kinds whose credentials are good, or the {@link ConfigError} `serve` would
 * stop with. For `sealpost doctor`; sends nothing.
 *
 * @example
 * ```ts
 * const kinds = await checkPushCredentials(config, systemClock); // ["apns"]
 * ```
 */
export async function checkPushCredentials(config: Config, clock: Clock): Promise<PushKind[]> {
  const senders = new Map<PushKind, PushSender>();
  try {
    await openCredentialSenders(config, clock, {}, senders);
    return [...senders.keys()];
  } finally {
    for (const sender of senders.values()) sender.close();
  }
}

async function open(
  config: Config,
  db: Db,
  clock: Clock,
  guard: AddressGuard,
  endpoints: PushEndpoints,
  senders: Map<PushKind, PushSender>,
): Promise<OpenedPush> {
  // Credentials first: a bad one stops the start before anything is written.
  await openCredentialSenders(config, clock, endpoints, senders);
  return await openWebSenders(config, db, clock, guard, endpoints, senders);
}

/** The APNs and FCM senders, whose credentials come from the configuration. */
async function openCredentialSenders(
  config: Config,
  clock: Clock,
  endpoints: PushEndpoints,
  senders: Map<PushKind, PushSender>,
): Promise<void> {
  if (config.apnsKeyId && config.apnsTeamId && (config.apnsKey || config.apnsKeyFile)) {
    const pem = await readSecret(config.apnsKeyFile, config.apnsKey, "SEALPOST_APNS_KEY_FILE");
    let key: CryptoKey;
    try {
      key = await importPKCS8(pem.trim(), "ES256");
    } catch {
      throw new ConfigError(
        `Cannot use the APNs key: expected the .p8 file Apple issued (a PKCS#8 P-256 private key), got '${
          config.apnsKeyFile ?? "SEALPOST_APNS_KEY"
        }'`,
      );
    }
    senders.set(
      "apns",
      new ApnsSender({
        key,
        keyId: config.apnsKeyId,
        teamId: config.apnsTeamId,
        clock,
        productionUrl: endpoints.apnsProductionUrl,
        sandboxUrl: endpoints.apnsSandboxUrl,
        caCerts: endpoints.caCerts,
      }),
    );
  }

  if (config.fcmServiceAccount || config.fcmServiceAccountFile) {
    const json = await readSecret(
      config.fcmServiceAccountFile,
      config.fcmServiceAccount,
      "SEALPOST_FCM_SERVICE_ACCOUNT_FILE",
    );
    const source = config.fcmServiceAccountFile ?? "SEALPOST_FCM_SERVICE_ACCOUNT";
    let fcm: FcmSender;
    try {
      fcm = new FcmSender({
        account: parseServiceAccount(json),
        clock,
        apiUrl: endpoints.fcmApiUrl,
        caCerts: endpoints.caCerts,
      });
      await fcm.key();
    } catch (error) {
      const why = error instanceof Error && error.message.startsWith("it ")
        ? error.message
        : "its private_key is not an RSA key in PKCS#8 PEM";
      throw new ConfigError(
        `Cannot use the FCM service account: expected the JSON key file from the Firebase console, ${why}, got '${source}'`,
      );
    }
    senders.set("fcm", fcm);
  }
}

/** Web Push and UnifiedPush, signed with the VAPID key stored in the database. */
async function openWebSenders(
  config: Config,
  db: Db,
  clock: Clock,
  guard: AddressGuard,
  endpoints: PushEndpoints,
  senders: Map<PushKind, PushSender>,
): Promise<OpenedPush> {
  const vapidKeys = await loadVapidKeys(db, clock);
  const vapid = new VapidSigner(vapidKeys, config.vapidSubject ?? config.publicUrl, clock);
  const client = endpoints.caCerts
    ? Deno.createHttpClient({ caCerts: endpoints.caCerts })
    : undefined;
  const pinned = new PinnedFetcher({ caCerts: endpoints.caCerts });
  senders.set("webpush", new WebPushSender({ vapid, guard, client, pinned }));
  senders.set("unifiedpush", new UnifiedPushSender({ vapid, guard, client, pinned }));
  return {
    senders,
    vapidPublicKey: vapidKeys.publicKey,
    close: () => {
      for (const sender of senders.values()) sender.close();
      client?.close();
      pinned.close();
    },
  };
}

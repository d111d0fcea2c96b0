/**
 * @module
 * KeyPackages through Sealpost's key-package API (docs/mls.md "KeyPackages"): keeping this
 * device's supply on the relay topped up (private halves saved on the device first), claiming and
 * checking another account's packages before inviting it, and finding the private half a Welcome
 * was made for.
 */

import type { KeyPackage, PrivateKeyPackage, Welcome } from "ts-mls";
import { b64url, type DeviceIdentity, type HttpClient } from "../../client/mod.ts";
import {
  accountOf,
  authService,
  CIPHERSUITE,
  decodeKeyPackage,
  encodeKeyPackage,
  KEY_PACKAGE_KIND,
  keyPackageRef,
  newKeyPackage,
} from "./mls_identity.ts";
import type { ChatStore } from "./store.ts";

/** A KeyPackage of this device as the store keeps it, under `kp:<KeyPackageRef>`. */
type StoredKeyPackage = {
  keyPackage: string;
  privatePackage: PrivateKeyPackage;
  lastResort: boolean;
};

/** A claimed KeyPackage that checked out, with the device it is for. */
export type ClaimedKeyPackage = { device: string; keyPackage: KeyPackage };

/**
 * Uploads one-time KeyPackages when fewer than half of `target` are left on the relay, and a
 * last resort when there is none. Private halves are stored before the upload, so anything the
 * relay hands out can be opened here.
 *
 * @example
 * ```ts
 * await replenishKeyPackages(api, store, identity, 5);
 * ```
 */
export async function replenishKeyPackages(
  api: HttpClient,
  store: ChatStore,
  identity: DeviceIdentity,
  target: number,
): Promise<void> {
  const counts = (await api.keyPackageCounts())[KEY_PACKAGE_KIND];
  const available = counts?.available ?? 0;
  const fresh: string[] = [];
  const entries: Record<string, StoredKeyPackage> = {};
  const make = async (lastResort: boolean) => {
    const pair = await newKeyPackage(identity);
    const keyPackage = encodeKeyPackage(pair.publicPackage);
    entries[`kp:${await keyPackageRef(pair.publicPackage)}`] = {
      keyPackage,
      privatePackage: pair.privatePackage,
      lastResort,
    };
    return keyPackage;
  };
  if (available < Math.ceil(target / 2)) {
    for (let i = available; i < target; i++) fresh.push(await make(false));
  }
  const lastResort = counts?.last_resort ? undefined : await make(true);
  if (fresh.length === 0 && !lastResort) return;
  await store.put(entries);
  await api.uploadKeyPackages(KEY_PACKAGE_KIND, fresh, lastResort);
}

/**
 * Claims one KeyPackage per active device of `account` and keeps those that really are that
 * account's: right ciphersuite, credential naming the account, signature key equal to the device
 * the relay named, and a device certificate by the account key. Throws when none is left.
 */
export async function claimKeyPackages(
  api: HttpClient,
  account: string,
): Promise<ClaimedKeyPackage[]> {
  const claimed = await api.claimKeyPackages(account, KEY_PACKAGE_KIND);
  const packages: ClaimedKeyPackage[] = [];
  for (const claim of claimed) {
    const keyPackage = decodeKeyPackage(claim.package);
    if (!keyPackage || keyPackage.cipherSuite !== CIPHERSUITE) continue;
    const leaf = keyPackage.leafNode;
    if (accountOf(leaf.credential) !== account) continue;
    if (b64url(leaf.signaturePublicKey) !== claim.device) continue;
    if (!(await authService.validateCredential(leaf.credential, leaf.signaturePublicKey))) {
      continue;
    }
    packages.push({ device: claim.device, keyPackage });
  }
  if (packages.length === 0) {
    throw new Error("That account has no KeyPackages for this app: has it opened the chat?");
  }
  return packages;
}

/**
 * The KeyPackage of this device that `welcome` was made for, or null. `spend()` forgets a
 * one-time package's private half once joined (a last resort's is kept).
 */
export async function welcomeKeyPackage(
  store: ChatStore,
  welcome: Welcome,
): Promise<
  { keyPackage: KeyPackage; privatePackage: PrivateKeyPackage; spend(): Promise<void> } | null
> {
  for (const secret of welcome.secrets) {
    const key = `kp:${b64url(secret.newMember)}`;
    const stored = await store.get<StoredKeyPackage>(key);
    const keyPackage = stored && decodeKeyPackage(stored.keyPackage);
    if (!stored || !keyPackage) continue;
    return {
      keyPackage,
      privatePackage: stored.privatePackage,
      spend: async () => {
        if (!stored.lastResort) await store.put({ [key]: undefined });
      },
    };
  }
  return null;
}

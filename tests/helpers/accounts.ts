/**
 * @module
 * Registers devices for tests: one-device accounts, or several devices of one account.
 */

import {
  createDeviceIdentity,
  type DeviceIdentity,
  generateKeyPair,
  HttpClient,
} from "../../client/mod.ts";

/** A registered device with its HTTP client. */
export type TestDevice = {
  identity: DeviceIdentity;
  api: HttpClient;
  account: string;
  device: string;
  token: string;
};

/** Registers a new single-device account. */
export async function newDevice(url: string, name = "test"): Promise<TestDevice> {
  const identity = await createDeviceIdentity();
  const api = new HttpClient(url);
  const reg = await api.register(identity, { name });
  return { identity, api, account: identity.account, device: identity.device.id, token: reg.token };
}

/** Registers `n` devices of one new account. */
export async function newAccount(url: string, n: number): Promise<TestDevice[]> {
  const root = await generateKeyPair();
  const out: TestDevice[] = [];
  for (let i = 0; i < n; i++) {
    const identity = await createDeviceIdentity(root);
    const api = new HttpClient(url);
    const reg = await api.register(identity, { name: `device ${i}` });
    out.push({
      identity,
      api,
      account: identity.account,
      device: identity.device.id,
      token: reg.token,
    });
  }
  return out;
}

/** base64url of random bytes: a stand-in ciphertext. */
export function cipher(n = 32): string {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

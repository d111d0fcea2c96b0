/**
 * @module
 * Builds the population of a scenario through the public API, as real clients would: one
 * single-device account per device (register = challenge + signed register), then groups of
 * `size` accounts created by their first member. Work runs with bounded concurrency.
 */

import { createDeviceIdentity, HttpClient } from "../client/mod.ts";
import { pool, range } from "./stats.ts";

/** A registered device and its authenticated HTTP client. */
export type BenchDevice = { api: HttpClient; account: string; device: string };

/** A group and its member devices. */
export type BenchGroup = { id: string; members: BenchDevice[] };

/** Registers `n` one-device accounts; returns them with the time it took. */
export async function registerDevices(
  url: string,
  n: number,
  concurrency = 32,
): Promise<{ devices: BenchDevice[]; seconds: number }> {
  const t0 = performance.now();
  const devices = await pool(range(n), concurrency, async () => {
    const identity = await createDeviceIdentity();
    const api = new HttpClient(url);
    await api.register(identity, { name: "bench" });
    return { api, account: identity.account, device: identity.device.id };
  });
  return { devices, seconds: (performance.now() - t0) / 1000 };
}

/** The same device's HTTP client pointed at another relay process (its token kept). */
export function rebind(device: BenchDevice, url: string): BenchDevice {
  const api = new HttpClient(url);
  api.token = device.api.token;
  api.tokenExpiresAt = device.api.tokenExpiresAt;
  return { ...device, api };
}

/** Puts consecutive runs of `size` devices into one group each. */
export function createGroups(
  devices: BenchDevice[],
  size: number,
  concurrency = 16,
): Promise<BenchGroup[]> {
  const chunks = range(Math.floor(devices.length / size)).map((i) =>
    devices.slice(i * size, (i + 1) * size)
  );
  return pool(chunks, concurrency, async (members) => {
    const group = await members[0].api.createGroup({
      members: members.slice(1).map((m) => m.account),
    });
    return { id: group.id, members };
  });
}

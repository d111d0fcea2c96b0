/**
 * @module
 * Helpers for API tests: run a test relay and always remove what it wrote, make raw HTTP calls
 * (to see statuses, headers and error bodies exactly as a client does), register devices with
 * the client SDK, and assert protocol errors.
 *
 * @example
 * ```ts
 * testBothDatabases("login() works", (db) =>
 *   withRelay(db, {}, async (t) => {
 *     const { me } = await registered(t);
 *     await new HttpClient(t.url).login(me);
 *   }));
 * ```
 */

import assert from "node:assert/strict";
import {
  createDeviceIdentity,
  type DeviceIdentity,
  HttpClient,
  type KeyPair,
  proveNonce,
  type RegisterOptions,
  SealpostError,
} from "../../client/mod.ts";
import {
  DB_KINDS,
  type DbKind,
  dbUnavailable,
  startTestRelay,
  type TestRelay,
  type TestRelayOptions,
} from "./relay.ts";

/** A test relay as {@link withRelay} hands it out. */
export type RunningRelay = TestRelay & { databaseUrl?: string };

/**
 * Starts a relay on `db`, runs `fn`, then stops the relay and deletes its data directory
 * (unless the caller passed its own `dataDir` to reuse).
 */
export async function withRelay<T>(
  db: DbKind,
  options: Omit<TestRelayOptions, "db">,
  fn: (t: RunningRelay) => Promise<T>,
): Promise<T> {
  const t = await startTestRelay({ ...options, db });
  try {
    return await fn(t);
  } finally {
    await t.stop();
    if (!options.dataDir) await Deno.remove(t.dataDir, { recursive: true }).catch(() => {});
  }
}

/**
 * Registers one test per database kind that starts a single relay and runs each behaviour
 * against it as a named step, in order. Starting a relay costs far more than most checks, so
 * behaviours that do not need a relay of their own share one; each uses fresh identities and
 * sets up whatever state (a setting, say) it relies on.
 *
 * @example
 * ```ts
 * relaySuite("authentication", {}, {
 *   "login() answers 401 unknown_device for an unknown device": async (t) => {},
 * });
 * ```
 */
export function relaySuite(
  name: string,
  options: Omit<TestRelayOptions, "db">,
  behaviours: Record<string, (t: RunningRelay) => Promise<void>>,
): void {
  for (const kind of DB_KINDS) {
    const why = dbUnavailable(kind);
    if (why) console.warn(`skipping "${name} [${kind}]": ${why}`);
    Deno.test({
      name: `${name} [${kind}]`,
      ignore: why !== null,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: (ctx) =>
        withRelay(kind, options, async (t) => {
          for (const [behaviour, fn] of Object.entries(behaviours)) {
            await ctx.step(behaviour, () => fn(t));
          }
        }),
    });
  }
}

/**
 * A raw HTTP answer: status, headers and the parsed JSON body (null when empty). The body is
 * `any` on purpose: tests probe its fields and the assertions are the type check.
 */
// deno-lint-ignore no-explicit-any
export type RawResponse = { status: number; headers: Headers; body: any };

/**
 * Makes one HTTP call. A string `body` is sent as is (for malformed JSON); anything else is
 * sent as JSON.
 */
export async function call(
  baseUrl: string,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["content-type"] ??= "application/json";
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  }
  const response = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

/** Asserts that `response` is the PROTOCOL.md error body with `status` and `code`. */
export function assertErrorBody(response: RawResponse, status: number, code: string): void {
  assert.equal(
    response.status,
    status,
    `expected ${status} ${code}, got ${response.status} ${JSON.stringify(response.body)}`,
  );
  assert.equal(response.body?.error?.code, code, JSON.stringify(response.body));
  assert.equal(typeof response.body.error.message, "string");
  assert.ok(response.body.error.message.length > 0, "the error has a message");
}

/** Awaits `promise` and asserts it failed with a relay error of `status` and `code`. */
export async function assertRejects(
  promise: Promise<unknown>,
  status: number,
  code: string,
): Promise<SealpostError> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof SealpostError)) throw error;
    assert.equal(error.status, status, error.message);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${status} ${code}, but the call succeeded`);
}

/** A device registered on a relay, with a client holding its token. */
export type Registered = { me: DeviceIdentity; api: HttpClient; status: number };

/**
 * Creates a device identity (under `account` when given, else a single-key account) and
 * registers it.
 */
export async function registered(
  t: { url: string },
  options: { account?: KeyPair } & RegisterOptions = {},
): Promise<Registered> {
  const { account, ...register } = options;
  const me = await createDeviceIdentity(account);
  const api = new HttpClient(t.url);
  const { status } = await api.register(me, register);
  return { me, api, status };
}

/** A register body for `me` over `nonce`, with fields to override or break. */
export async function registerBody(
  me: DeviceIdentity,
  nonce: string,
  overrides: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  return {
    account: me.account,
    device: me.device.id,
    cert: me.cert,
    nonce,
    sig: await proveNonce(me.device, nonce),
    ...overrides,
  };
}

/** A login body for `me` over `nonce`. */
export async function loginBody(
  me: DeviceIdentity,
  nonce: string,
): Promise<Record<string, unknown>> {
  return { device: me.device.id, nonce, sig: await proveNonce(me.device, nonce) };
}

/** Asks the relay for a fresh nonce. */
export async function nonce(baseUrl: string): Promise<string> {
  const response = await call(baseUrl, "POST", "/v1/auth/challenge");
  assert.equal(response.status, 200);
  return response.body.nonce;
}

/**
 * @module
 * Keeps a session's bearer token fresh: renews it shortly before `tokenExpiresAt`, and on demand
 * when the relay closes the socket with `4001` (the token expired). A token comes from the app's
 * `getToken` callback when given, else from logging in again with the device identity. Renewals
 * are single-flight: concurrent callers share one request.
 */

import { SealpostError } from "./errors.ts";
import type { HttpClient } from "./http.ts";
import type { DeviceIdentity } from "./keys.ts";

/** A fresh token from the app: the token alone, or with its expiry (ms since the epoch). */
export type TokenSource = () => Promise<string | { token: string; expires_at?: number }>;

/** Longest a timer may wait (setTimeout's 32-bit limit). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** True for an answer that says the device may not have a token at all (no retry helps). */
export function isAuthRefusal(error: unknown): boolean {
  return error instanceof SealpostError && (error.status === 401 || error.status === 403);
}

/** Renews the HTTP client's token from `getToken` or the identity. */
export class TokenKeeper {
  #api: HttpClient;
  #identity?: DeviceIdentity;
  #getToken?: TokenSource;
  #marginMs: number;
  #onError: (error: unknown) => void;
  #inflight: Promise<void> | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(
    api: HttpClient,
    options: {
      identity?: DeviceIdentity;
      getToken?: TokenSource;
      marginMs: number;
      onError(error: unknown): void;
    },
  ) {
    this.#api = api;
    this.#identity = options.identity;
    this.#getToken = options.getToken;
    this.#marginMs = options.marginMs;
    this.#onError = options.onError;
  }

  /** True when a token can be renewed (a `getToken` callback or an identity). */
  get canRefresh(): boolean {
    return this.#getToken !== undefined || this.#identity !== undefined;
  }

  /** True when the client has no token or one whose expiry (by this machine's clock) passed. */
  get expired(): boolean {
    const at = this.#api.tokenExpiresAt;
    return !this.#api.token || (at > 0 && at <= Date.now());
  }

  /** Gets a new token into the HTTP client (one request for concurrent callers). */
  refresh(): Promise<void> {
    this.#inflight ??= this.#fetch().finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  async #fetch(): Promise<void> {
    if (this.#getToken) {
      const got = await this.#getToken();
      const { token, expires_at } = typeof got === "string" ? { token: got, expires_at: 0 } : got;
      if (!token) throw new SealpostError(401, "unauthenticated", "getToken returned no token");
      this.#api.token = token;
      this.#api.tokenExpiresAt = expires_at ?? 0;
    } else if (this.#identity) {
      await this.#api.login(this.#identity);
    } else {
      throw new SealpostError(
        401,
        "unauthenticated",
        "No getToken callback or identity to renew the token",
      );
    }
    this.schedule();
  }

  /** Plans the next renewal `marginMs` before the token's expiry (when both are known). */
  schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const at = this.#api.tokenExpiresAt;
    if (this.#stopped || !this.canRefresh || !(at > 0)) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(1000, at - this.#marginMs - Date.now()));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.refresh().catch((error) => {
        this.#onError(error);
        // A refusal is final (the socket learns it too); anything else is retried later.
        if (!isAuthRefusal(error) && !this.#stopped) {
          this.#timer = setTimeout(() => this.schedule(), 30_000);
        }
      });
    }, delay);
  }

  /** Cancels planned renewals. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

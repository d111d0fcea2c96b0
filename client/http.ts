/**
 * @module
 * Typed HTTP calls of the Sealpost protocol. Every non-2xx answer becomes a
 * {@link SealpostError} carrying the protocol error code, status and retry hint.
 */

import { readAnswer, SealpostError } from "./errors.ts";
import { b64url, type DeviceIdentity, proveNonce } from "./keys.ts";

export { SealpostError } from "./errors.ts";

/** A device as the directory shows it. */
export type Device = {
  id: string;
  cert: string;
  name: string | null;
  platform: string | null;
  created_at: number;
  /** Null while the account has only been invited to the groups it shares with the viewer. */
  last_seen_at: number | null;
  status: "active" | "inactive" | "revoked";
};

/** A group as the relay returns it. */
export type Group = {
  id: string;
  members: {
    account: string;
    role: "owner" | "admin" | "member";
    added_at: number;
    /** `invited` until one of the account's devices accepts (or sends in the group). */
    state: "invited" | "accepted";
  }[];
  retention_s: number;
  last_seq: number;
  created_at: number;
};

/** A stored message. */
export type StoredMessage = {
  group: string;
  seq: number;
  /** Null for a sealed send: the relay does not know the sender (authenticate it inside). */
  from: { account: string; device: string } | null;
  created_at: number;
  expires_at: number | null;
  body: string;
  blob?: { id: string; size: number };
  to?: string[];
};

/** What a send carries. */
export type SendRequest = {
  body: string;
  client_id?: string;
  ttl_s?: number;
  to?: string[];
  blob?: string;
  ephemeral?: boolean;
};

/** A device's push target for `PUT /v1/devices/me/push` (one per device). */
export type PushTarget =
  | { kind: "webpush"; endpoint: string; keys: { p256dh: string; auth: string } }
  | { kind: "unifiedpush"; endpoint: string; keys?: { p256dh: string; auth: string } }
  | { kind: "apns"; token: string; topic: string; sandbox?: boolean }
  | { kind: "fcm"; token: string };

/** `GET /v1/info`. */
export type ServerInfo = {
  name: string;
  version: string;
  registration: "open" | "invite" | "closed";
  limits: Record<string, unknown> & { max_message_bytes: number; max_blob_bytes: number };
  push: Record<string, unknown>;
};

/** The answer to `POST /v1/blobs`: where and how to upload the declared blob. */
export type BlobUpload = {
  id: string;
  upload: { url: string; method: "PUT"; headers: Record<string, string> };
  expires_at: number;
};

/** Bytes a blob upload can stream from. */
export type BlobBody = Uint8Array<ArrayBuffer> | Blob | ReadableStream<Uint8Array>;

/** base64url (no padding) of the SHA-256 of `bytes`: the `sha256` of `POST /v1/blobs`. */
export async function blobDigest(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

/** Counts of one key-package kind, as `GET /v1/devices/me/keys` reports them. */
export type KeyPackageCounts = { available: number; last_resort: boolean };

/** A package claimed for one device of an account. */
export type ClaimedKeyPackage = { device: string; package: string; last_resort: boolean };

/** Options for registering a device. */
export type RegisterOptions = { name?: string; platform?: string; invite?: string };

/**
 * A low-level HTTP client bound to one relay and (after register or login) one token.
 *
 * @example
 * ```ts
 * const api = new HttpClient("http://localhost:8080");
 * await api.register(identity, { name: "laptop" });
 * const { devices } = await api.devices(identity.account);
 * ```
 */
export class HttpClient {
  /** The bearer token of the last register or login (or one the app set). */
  token: string | null = null;
  /** When `token` expires, in ms since the epoch by the relay's clock (0: unknown). */
  tokenExpiresAt = 0;
  /** The relay's base URL, without a trailing slash. */
  readonly baseUrl: string;
  /** The fetch in use (the global one unless given). */
  readonly fetchFn: typeof fetch;

  constructor(baseUrl: string, fetchFn?: typeof fetch) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    // Called as a method, the global fetch would get this client as `this`: browsers refuse that.
    this.fetchFn = fetchFn ?? ((input, init) => fetch(input, init));
  }

  /** Performs a request; returns the parsed JSON (or null for 204) and the status. */
  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    options: { auth?: boolean; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<{ status: number; data: T }> {
    const headers: Record<string, string> = { ...options.headers };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (options.auth !== false && this.token) headers.authorization = `Bearer ${this.token}`;
    const response = await this.fetchFn(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: options.signal,
    });
    const data = await readAnswer(response);
    return { status: response.status, data: data as T };
  }

  /** `GET /v1/info`. */
  async info(): Promise<ServerInfo> {
    return (await this.request<ServerInfo>("GET", "/v1/info", undefined, { auth: false })).data;
  }

  /** `POST /v1/auth/challenge`. */
  async challenge(): Promise<{ nonce: string; expires_at: number }> {
    return (await this.request<{ nonce: string; expires_at: number }>(
      "POST",
      "/v1/auth/challenge",
      undefined,
      { auth: false },
    )).data;
  }

  /** Registers `identity` (idempotent for a known device) and keeps the token. */
  async register(
    identity: DeviceIdentity,
    options: RegisterOptions = {},
  ): Promise<
    { status: number; token: string; expires_at: number; account: string; device: string }
  > {
    const { nonce } = await this.challenge();
    const { status, data } = await this.request<
      { token: string; expires_at: number; account: string; device: string }
    >("POST", "/v1/auth/register", {
      account: identity.account,
      device: identity.device.id,
      cert: identity.cert,
      nonce,
      sig: await proveNonce(identity.device, nonce),
      ...options,
    }, { auth: false });
    this.token = data.token;
    this.tokenExpiresAt = data.expires_at;
    return { status, ...data };
  }

  /** Logs in a known device and keeps the token. */
  async login(identity: DeviceIdentity): Promise<{ token: string; expires_at: number }> {
    const { nonce } = await this.challenge();
    const { data } = await this.request<{ token: string; expires_at: number }>(
      "POST",
      "/v1/auth/login",
      { device: identity.device.id, nonce, sig: await proveNonce(identity.device, nonce) },
      { auth: false },
    );
    this.token = data.token;
    this.tokenExpiresAt = data.expires_at;
    return data;
  }

  /** `GET /v1/accounts/:account/devices`. */
  async devices(account: string): Promise<{ devices: Device[] }> {
    return (await this.request<{ devices: Device[] }>(
      "GET",
      `/v1/accounts/${encodeURIComponent(account)}/devices`,
    )).data;
  }

  /** `DELETE /v1/devices/:device`. */
  async revokeDevice(device: string): Promise<void> {
    await this.request("DELETE", `/v1/devices/${encodeURIComponent(device)}`);
  }

  /**
   * `PUT /v1/devices/me/push`: registers (or replaces) this device's push target, so the relay
   * wakes it when messages arrive while it is offline.
   *
   * @example
   * ```ts
   * const sub = await registration.pushManager.subscribe({
   *   userVisibleOnly: true,
   *   applicationServerKey: (await api.info()).push.webpush.vapid_public_key,
   * });
   * const { endpoint, keys } = sub.toJSON();
   * await api.setPushTarget({ kind: "webpush", endpoint, keys });
   * ```
   */
  async setPushTarget(target: PushTarget): Promise<void> {
    await this.request("PUT", "/v1/devices/me/push", target);
  }

  /** `DELETE /v1/devices/me/push`: stops wake-ups for this device. */
  async deletePushTarget(): Promise<void> {
    await this.request("DELETE", "/v1/devices/me/push");
  }

  /**
   * `PUT /v1/devices/me/keys`: adds one-time packages (base64url, ≤ 100 a call) of `kind` and,
   * with `lastResort`, replaces the reusable fallback. At most 1,000 are stored per kind
   * (`409 conflict` past it).
   */
  async uploadKeyPackages(kind: string, packages: string[], lastResort?: string): Promise<void> {
    await this.request("PUT", "/v1/devices/me/keys", {
      kind,
      packages,
      ...(lastResort !== undefined ? { last_resort: lastResort } : {}),
    });
  }

  /** `GET /v1/devices/me/keys`: this device's packages left per kind, to know when to top up. */
  async keyPackageCounts(): Promise<Record<string, KeyPackageCounts>> {
    return (await this.request<{ kinds: Record<string, KeyPackageCounts> }>(
      "GET",
      "/v1/devices/me/keys",
    )).data.kinds;
  }

  /**
   * `POST /v1/accounts/:account/keys/claim`: one package of `kind` per active device of
   * `account` (each one-time package is handed out once; else the device's last resort).
   */
  async claimKeyPackages(account: string, kind: string): Promise<ClaimedKeyPackage[]> {
    return (await this.request<{ packages: ClaimedKeyPackage[] }>(
      "POST",
      `/v1/accounts/${encodeURIComponent(account)}/keys/claim`,
      { kind },
    )).data.packages;
  }

  /** `POST /v1/groups`. */
  async createGroup(
    options: { id?: string; members?: string[]; retention_s?: number } = {},
  ): Promise<Group> {
    return (await this.request<Group>("POST", "/v1/groups", options)).data;
  }

  /** `GET /v1/groups`. */
  async groups(): Promise<(Group & { cursor: number })[]> {
    return (await this.request<{ groups: (Group & { cursor: number })[] }>("GET", "/v1/groups"))
      .data.groups;
  }

  /** `GET /v1/groups/:id`. */
  async group(id: string): Promise<Group> {
    return (await this.request<Group>("GET", `/v1/groups/${id}`)).data;
  }

  /** `PUT /v1/groups/:id/members/:account`. */
  async putMember(
    id: string,
    account: string,
    role?: "owner" | "admin" | "member",
  ): Promise<Group> {
    return (await this.request<Group>(
      "PUT",
      `/v1/groups/${id}/members/${account}`,
      role ? { role } : {},
    ))
      .data;
  }

  /** `POST /v1/groups/:id/accept`: accepts this account's invitation (idempotent). */
  async acceptGroup(id: string): Promise<Group> {
    return (await this.request<Group>("POST", `/v1/groups/${id}/accept`, {})).data;
  }

  /** `DELETE /v1/groups/:id/members/:account`. */
  async removeMember(id: string, account: string): Promise<void> {
    await this.request("DELETE", `/v1/groups/${id}/members/${account}`);
  }

  /** `DELETE /v1/groups/:id`. */
  async deleteGroup(id: string): Promise<void> {
    await this.request("DELETE", `/v1/groups/${id}`);
  }

  /** `POST /v1/groups/:id/messages`; `status` is 201 (new), 200 (repeat) or 202 (ephemeral). */
  async send(
    group: string,
    message: SendRequest,
  ): Promise<
    {
      status: number;
      seq?: number;
      created_at?: number;
      expires_at?: number | null;
      delivered?: number;
    }
  > {
    const { status, data } = await this.request<Record<string, number>>(
      "POST",
      `/v1/groups/${group}/messages`,
      message,
    );
    return { status, ...data };
  }

  /** `GET /v1/groups/:id/messages?after&limit`. */
  async messages(
    group: string,
    after = 0,
    limit?: number,
  ): Promise<{ messages: StoredMessage[]; last_seq: number; has_more: boolean }> {
    const query = `after=${after}${limit ? `&limit=${limit}` : ""}`;
    return (await this.request<{ messages: StoredMessage[]; last_seq: number; has_more: boolean }>(
      "GET",
      `/v1/groups/${group}/messages?${query}`,
    )).data;
  }

  /** `GET /v1/inbox?wait&limit`. */
  async inbox(
    options: { wait?: number; limit?: number; signal?: AbortSignal } = {},
  ): Promise<StoredMessage[]> {
    const params = new URLSearchParams();
    if (options.wait !== undefined) params.set("wait", String(options.wait));
    if (options.limit !== undefined) params.set("limit", String(options.limit));
    return (await this.request<{ messages: StoredMessage[] }>(
      "GET",
      `/v1/inbox?${params}`,
      undefined,
      { signal: options.signal },
    )).data.messages;
  }

  /** `POST /v1/ack`. */
  async ack(cursors: Record<string, number>): Promise<void> {
    await this.request("POST", "/v1/ack", { cursors });
  }

  /** `POST /v1/blobs`: declares a blob of `group` with its exact size and SHA-256. */
  async createBlob(group: string, size: number, sha256: string): Promise<BlobUpload> {
    return (await this.request<BlobUpload>("POST", "/v1/blobs", { group, size, sha256 })).data;
  }

  /**
   * Uploads a blob's bytes to the URL `createBlob` returned, with its headers and no bearer
   * token (the URL's signature is the permission). A stream is sent as it is read.
   */
  async uploadBlob(upload: BlobUpload["upload"], body: BlobBody): Promise<void> {
    const response = await this.fetchFn(upload.url, {
      method: upload.method,
      headers: upload.headers,
      body,
      ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
    } as RequestInit);
    const text = await response.text();
    if (!response.ok) {
      let code = "upload_failed";
      let message = text.slice(0, 200) || response.statusText;
      try {
        const error = JSON.parse(text).error;
        if (error?.code) [code, message] = [error.code, error.message];
      } catch { /* S3 answers XML */ }
      throw new SealpostError(response.status, code, message);
    }
  }

  /** Declares and uploads `bytes` as a blob of `group`; returns its id and size. */
  async putBlob(
    group: string,
    bytes: Uint8Array<ArrayBuffer>,
  ): Promise<{ id: string; size: number }> {
    const created = await this.createBlob(group, bytes.length, await blobDigest(bytes));
    await this.uploadBlob(created.upload, bytes);
    return { id: created.id, size: bytes.length };
  }

  /** `GET /v1/blobs/:id` without following it: the short-lived signed download URL. */
  async blobUrl(id: string): Promise<string> {
    const response = await this.fetchFn(`${this.baseUrl}/v1/blobs/${encodeURIComponent(id)}`, {
      headers: this.token ? { authorization: `Bearer ${this.token}` } : {},
      redirect: "manual",
    });
    const text = await response.text();
    if (response.status !== 302) {
      const error = text ? JSON.parse(text).error ?? {} : {};
      throw new SealpostError(
        response.status,
        error.code ?? "internal",
        error.message ?? response.statusText,
      );
    }
    return response.headers.get("location")!;
  }

  /**
   * Downloads a blob's bytes (members of its group only), following the relay's redirect to the
   * signed URL — in browsers too, where a manual redirect hides the `Location`. Fetch drops the
   * bearer token when the redirect leaves the relay's origin.
   */
  async downloadBlob(id: string): Promise<Uint8Array> {
    const response = await this.fetchFn(`${this.baseUrl}/v1/blobs/${encodeURIComponent(id)}`, {
      headers: this.token ? { authorization: `Bearer ${this.token}` } : {},
    });
    if (!response.ok) {
      const text = await response.text();
      let error: { code?: string; message?: string } = {};
      try {
        error = JSON.parse(text).error ?? {};
      } catch { /* not the relay's JSON: the store answered */ }
      throw new SealpostError(
        response.status,
        error.code ?? "download_failed",
        error.message ?? text.slice(0, 200),
      );
    }
    return new Uint8Array(await response.arrayBuffer());
  }
}

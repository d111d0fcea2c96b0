/**
 * @module
 * The push service `createRelay` wires in: it opens the configured senders at start, answers
 * `/v1/info`'s `push` object, registers and removes targets, hands committed batches to the
 * outbox (off the send path), runs the leader's dispatch loop and offers the lifecycle job its
 * idle wake-up.
 */

import type { Deps } from "../deps.ts";
import { AddressGuard } from "./address_guard.ts";
import type { PushKind } from "./mod.ts";
import { type OpenedPush, openPushSenders, type PushEndpoints } from "./open.ts";
import { type DispatchReport, PushOutbox } from "./outbox.ts";
import { checkTarget, type PushTargetBody, removeTarget, storeTarget } from "./targets.ts";
import type { StoredMessage } from "../messages.ts";

/** `GET /v1/info`'s `push` object (PROTOCOL.md "Server information"). */
export type PushInfo = {
  webpush?: { vapid_public_key: string };
  apns: boolean;
  fcm: boolean;
  unifiedpush: boolean;
};

/** What the push service needs beyond the base dependencies. */
export type PushServiceOptions = {
  /** Which of `devices` are connected to any live instance (this one included). */
  online(devices: string[]): Promise<Set<string>>;
  isLeader(): boolean;
  /** Test endpoints and trust. */
  endpoints?: PushEndpoints;
  /** How often the leader looks for due wake-ups (ms). */
  pollMs?: number;
};

const SETTINGS_OF: Record<PushKind, string> = {
  webpush: "it starts with the relay",
  unifiedpush: "it starts with the relay",
  apns: "the operator sets SEALPOST_APNS_KEY_FILE, SEALPOST_APNS_KEY_ID and SEALPOST_APNS_TEAM_ID",
  fcm: "the operator sets SEALPOST_FCM_SERVICE_ACCOUNT_FILE",
};

/** Push wake-ups for one relay instance. */
export class PushService {
  readonly guard: AddressGuard;
  #opened: OpenedPush | null = null;
  #outbox: PushOutbox | null = null;

  constructor(private readonly deps: Deps, private readonly options: PushServiceOptions) {
    this.guard = new AddressGuard({
      allowPrivate: deps.config.unifiedPushAllowPrivate,
      resolve: options.endpoints?.resolve,
    });
  }

  /** Opens the senders (a bad credential throws a ConfigError) and starts the dispatch loop. */
  async start(): Promise<void> {
    const { config, db, clock, log, metrics, settings } = this.deps;
    this.#opened = await openPushSenders(config, db, clock, this.guard, this.options.endpoints);
    this.#outbox = new PushOutbox({
      db,
      clock,
      log,
      metrics,
      senders: this.#opened.senders,
      minIntervalMs: config.pushMinInterval,
      online: this.options.online,
      inactiveAfterMs: async () => (await settings.get()).inactive_after_s * 1000,
      isLeader: this.options.isLeader,
      pollMs: this.options.pollMs,
    });
    metrics.pushQueue = () => this.depth();
    this.#outbox.start();
    log.info("push ready", { providers: [...this.#opened.senders.keys()] });
  }

  /** Which push services this relay offers. */
  info(): PushInfo {
    const senders = this.#opened?.senders;
    const out: PushInfo = {
      apns: senders?.has("apns") ?? false,
      fcm: senders?.has("fcm") ?? false,
      unifiedpush: senders?.has("unifiedpush") ?? false,
    };
    if (this.#opened && senders?.has("webpush")) {
      return { webpush: { vapid_public_key: this.#opened.vapidPublicKey }, ...out };
    }
    return out;
  }

  /** Why `kind` cannot be registered here, or null. */
  unavailable(kind: PushKind): string | null {
    if (this.#opened?.senders.has(kind)) return null;
    if (!this.#opened) return "Push is not ready yet; retry shortly";
    return `kind: ${kind} push is not configured on this relay (${SETTINGS_OF[kind]})`;
  }

  /** `PUT /v1/devices/me/push`: checks and stores the caller's target. */
  async setTarget(device: string, body: PushTargetBody): Promise<void> {
    await checkTarget(body, {
      unavailable: (kind) => this.unavailable(kind),
      apnsTopics: this.deps.config.apnsTopics,
      guard: this.guard,
    });
    await storeTarget(this.deps.db, this.deps.clock, device, body);
    this.deps.log.info("push target set", { device, kind: body.kind });
  }

  /** `DELETE /v1/devices/me/push` (also when a device is revoked). */
  async deleteTarget(device: string): Promise<void> {
    if (await removeTarget(this.deps.db, device)) {
      this.deps.log.info("push target removed", { device });
    }
  }

  /** Hands a batch this instance committed to the outbox; returns at once. */
  afterCommit(published: StoredMessage[][]): void {
    this.#outbox?.noteCommitted(published);
  }

  /**
   * The lifecycle job's hook: queues a wake-up for idle devices close to deletion. Returns how
   * many were queued.
   */
  async wakeIdle(pass: { now: number; inactiveAfterMs: number; deleteAfterMs: number }) {
    if (!this.#outbox) return 0;
    return await this.#outbox.wakeIdle(pass.now, pass.inactiveAfterMs, pass.deleteAfterMs);
  }

  /** One dispatch round now (tests; the loop does this on the leader). */
  dispatchOnce(): Promise<DispatchReport> {
    if (!this.#outbox) throw new Error("push is not started");
    return this.#outbox.dispatchOnce();
  }

  /** Waits until committed batches noted so far are in the outbox. */
  async settled(): Promise<void> {
    await this.#outbox?.settled();
  }

  /** Waits until noted commits are in the outbox and no dispatch round is running (tests). */
  async idle(): Promise<void> {
    await this.#outbox?.idle();
  }

  /** Wake-ups waiting in the outbox (cluster-wide). */
  depth(): Promise<number> {
    return this.#outbox?.depth() ?? Promise.resolve(0);
  }

  /** Stops the loop, lets the round in flight finish (briefly) and closes the HTTP clients. */
  async stop(): Promise<void> {
    await this.#outbox?.stop();
    this.#opened?.close();
  }
}

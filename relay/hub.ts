/**
 * @module
 * The local hub: every live {@link Connection} of this instance, indexed by device, account and
 * subscribed group. It turns bus events into frames — committed messages (through each
 * connection's {@link Subscription}, so order is kept), membership announcements, presence,
 * ephemeral messages, revocations — and enforces the per-device connection limit; a connection
 * too slow for live delivery (see `connection.ts`) is closed with `4009` and resumes from its
 * cursor on reconnect, so nothing is lost. A connection authenticated with a token is closed
 * with `4001` when that token expires, as a revoked device's are with `4003`: one timer for the
 * whole hub looks, once a second, only at the connections due ({@link Deadlines}).
 *
 * Presence is never announced to a group the device's account has only been invited to (issue
 * 16), and not at all when the operator turned presence off.
 */

import type { Bus, BusEvent } from "./bus/bus.ts";
import { Connection, type FrameSocket } from "./connection.ts";
import { closeCode, type CloseReason, ERRORS } from "./errors.ts";
import type { ServerFrame } from "./protocol.ts";
import type { Logger } from "./base/log.ts";
import { messageFrame, type StoredMessage, visibleTo } from "./messages.ts";
import { Subscription } from "./subscribe.ts";
import { startSpan } from "./base/trace.ts";
import type { ReplayReader } from "./backlog.ts";
import type { Clock } from "./base/clock.ts";
import { Deadlines } from "./base/deadlines.ts";

/** Largest `msgs` frame a batched replay builds (characters), unless one message is larger. */
const BATCH_FRAME_BYTES = 256 * 1024;

/** How often the hub looks for connections whose token expired. */
const EXPIRY_TICK_MS = 1000;

const frameCache = new WeakMap<StoredMessage, string>();

/** The serialized frame of a message, built once and shared by every recipient. */
export function sharedFrame(message: StoredMessage): string {
  let frame = frameCache.get(message);
  if (!frame) frameCache.set(message, frame = messageFrame(message));
  return frame;
}

/** What the hub reads from (backlog, cursors, bus) and reports to (metrics, presence). */
export type HubOptions = {
  /** Reads replay pages (replica-aware). */
  read: ReplayReader;
  bus: Bus;
  clock: Clock;
  log: Logger;
  instanceId: string;
  maxConnectionsPerDevice: number;
  maxBufferedBytes: number;
  /** Reads a device's cursors (stored merged with unflushed). */
  cursorsOf(device: string): Promise<Map<string, number>>;
  /** Counts closes by code (metrics). */
  onClose?(code: number): void;
  /** Counts message frames written (metrics). */
  onDeliver?(path: "live" | "replay", bytes: number, message: StoredMessage): void;
  /** Called for each batched replay frame sent, with its size and how many messages it held. */
  onDeliverMany?(path: "replay", bytes: number, count: number): void;
  /** A device's first connection here opened, or its last one closed. */
  onPresence?(device: string, online: boolean): void;
  /** False turns presence events off server-wide (`SEALPOST_PRESENCE=off`); default true. */
  presence?: boolean;
};

/** Every live connection of this instance; the one subscriber to the bus that writes frames. */
export class Hub {
  readonly #byDevice = new Map<string, Set<Connection>>();
  readonly #byAccount = new Map<string, Set<Connection>>();
  readonly #byGroup = new Map<string, Set<Connection>>();
  #nextId = 1;
  readonly #unsubscribeBus: () => void;
  /** Token-authenticated connections by their token's expiry. */
  readonly #expiries = new Deadlines<Connection>();
  #expiryTimer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly options: HubOptions) {
    this.#unsubscribeBus = options.bus.subscribe((event) => this.#onEvent(event));
  }

  /** Number of live connections. */
  get connections(): number {
    let n = 0;
    for (const set of this.#byDevice.values()) n += set.size;
    return n;
  }

  /** Number of devices with at least one live connection. */
  get onlineDevices(): number {
    return this.#byDevice.size;
  }

  /** True when a connection here follows `group`. */
  hasSubscribers(group: string): boolean {
    return this.#byGroup.has(group);
  }

  /** Every live connection (for revalidation after a bus gap). */
  allConnections(): Connection[] {
    return [...this.#byDevice.values()].flatMap((set) => [...set]);
  }

  /**
   * After events may have been missed: every subscription reads back from its `last` seq, and
   * `memberships` (account → groups, read fresh) brings each connection's group set up to date.
   */
  resync(memberships: Map<string, string[]> & { invited?: Set<string> }): void {
    for (const conn of this.allConnections()) {
      const now = new Set(memberships.get(conn.account) ?? []);
      for (const group of [...conn.groups]) if (!now.has(group)) this.#dropGroup(conn, group);
      for (const group of now) {
        // A missed member_accepted or invitation: whether its presence may show (issue 16).
        const invited = memberships.invited?.has(`${conn.account} ${group}`);
        if (invited === true) conn.invited.add(group);
        else if (invited === false) conn.invited.delete(group);
        if (conn.groups.has(group)) continue;
        conn.groups.add(group);
        if (conn.subscribeAll) this.#startSubscription(conn, group, 0);
      }
      for (const sub of conn.subs.values()) sub.kick();
    }
  }

  /** True when `device` has a live connection on this instance. */
  isOnline(device: string): boolean {
    return this.#byDevice.has(device);
  }

  /**
   * Adds an authenticated connection, or returns null when the device already has the maximum
   * number of connections.
   */
  add(
    account: string,
    device: string,
    socket: FrameSocket,
    groups: string[],
    invited: string[] = [],
    /** When the connection's token expires (ms); none for a signature-authenticated socket. */
    expiresAt?: number,
  ): Connection | null {
    const existing = this.#byDevice.get(device);
    if (existing && existing.size >= this.options.maxConnectionsPerDevice) return null;
    const conn = new Connection(
      this.#nextId++,
      account,
      device,
      socket,
      this.options.maxBufferedBytes,
      (slow) => this.closeConnection(slow, "too_slow"),
    );
    conn.groups = new Set(groups);
    conn.invited = new Set(invited);
    if (expiresAt !== undefined) this.#watchExpiry(conn, expiresAt);
    const first = !existing || existing.size === 0;
    index(this.#byDevice, device, conn);
    index(this.#byAccount, account, conn);
    if (first) {
      this.options.onPresence?.(device, true);
      this.#announcePresence(conn, true);
    }
    return conn;
  }

  #watchExpiry(conn: Connection, expiresAt: number): void {
    this.#expiries.add(conn, expiresAt);
    this.#expiryTimer ??= setInterval(() => this.expireTokens(), EXPIRY_TICK_MS);
  }

  /**
   * Closes (`4001`) every connection whose token has expired by the clock's time; runs once a
   * second while such connections exist, and tests call it after moving the clock.
   */
  expireTokens(): void {
    for (const conn of this.#expiries.due(this.options.clock.now())) {
      if (conn.open) this.closeConnection(conn, "unauthenticated", "token expired");
      else this.remove(conn);
    }
    this.#stopExpiryTimerIfIdle();
  }

  #stopExpiryTimerIfIdle(): void {
    if (this.#expiries.size > 0 || this.#expiryTimer === undefined) return;
    clearInterval(this.#expiryTimer);
    this.#expiryTimer = undefined;
  }

  /** Removes a connection (socket closed). */
  remove(conn: Connection): void {
    this.#expiries.delete(conn);
    this.#stopExpiryTimerIfIdle();
    for (const group of conn.subs.keys()) unindex(this.#byGroup, group, conn);
    for (const sub of conn.subs.values()) sub.close();
    conn.subs.clear();
    const wasIndexed = this.#byDevice.get(conn.device)?.has(conn) ?? false;
    unindex(this.#byDevice, conn.device, conn);
    unindex(this.#byAccount, conn.account, conn);
    if (wasIndexed && !this.#byDevice.has(conn.device)) {
      this.options.onPresence?.(conn.device, false);
      this.#announcePresence(conn, false);
    }
  }

  /** Publishes a device's presence to the groups its account has accepted (unless off). */
  #announcePresence(conn: Connection, online: boolean, only?: string): void {
    if (this.options.presence === false) return;
    const groups = only !== undefined
      ? [only]
      : [...conn.groups].filter((g) => !conn.invited.has(g));
    this.options.bus.publish({
      kind: "presence",
      device: conn.device,
      account: conn.account,
      groups,
      online,
    });
  }

  /**
   * Closes a connection with the close code of `reason` (a row of the error table) and forgets
   * it; `message` defaults to the row's message.
   */
  closeConnection(
    conn: Connection,
    reason: CloseReason,
    message: string = ERRORS[reason].message,
  ): void {
    const code = closeCode(reason);
    this.options.onClose?.(code);
    conn.close(code, message);
    this.remove(conn);
  }

  /**
   * Subscribes a connection to groups (`null`: all of the account's groups, now and later).
   * Returns the requested groups that the account is not a member of.
   */
  async subscribe(
    conn: Connection,
    groups: string[] | null,
    since: Record<string, number> | undefined,
    presence: boolean,
  ): Promise<string[]> {
    if (presence) conn.presence = true;
    if (groups === null) conn.subscribeAll = true;
    const wanted = groups === null ? [...conn.groups] : groups;
    const refused = wanted.filter((g) => !conn.groups.has(g));
    const accepted = wanted.filter((g) => conn.groups.has(g));
    const needCursor = accepted.some((g) => since?.[g] === undefined);
    const cursors = needCursor
      ? await this.options.cursorsOf(conn.device)
      : new Map<string, number>();
    for (const group of accepted) {
      this.#startSubscription(conn, group, since?.[group] ?? cursors.get(group) ?? 0);
    }
    return refused;
  }

  #startSubscription(conn: Connection, group: string, after: number): void {
    if (!conn.open) return;
    conn.subs.get(group)?.close();
    const sub = new Subscription(
      group,
      {
        device: conn.device,
        get open() {
          return conn.open;
        },
        deliver: (message) => {
          const frame = sharedFrame(message);
          const sent = conn.sendText(frame);
          if (sent) this.options.onDeliver?.("live", frame.length, message);
          return sent;
        },
        replay: (texts) =>
          conn.batch ? this.#replayBatched(conn, group, texts) : this.#replayFrames(conn, texts),
        synced: (g, seq) => conn.sendJson({ t: "synced", group: g, seq }),
      },
      Math.max(0, after),
      this.options.read,
      () => this.options.clock.now(),
      (error) => {
        this.options.log.warn("replay failed; closing connection", { error, device: conn.device });
        this.closeConnection(conn, "internal", "replay failed: reconnect");
      },
    );
    conn.subs.set(group, sub);
    index(this.#byGroup, group, conn);
    sub.start();
  }

  /**
   * Sends replayed messages (their JSON texts, see `readReplayPage`) as one `msg` frame each: the
   * text with `"t":"msg"` spliced in, nothing parsed or serialized.
   */
  async #replayFrames(conn: Connection, texts: string[]): Promise<boolean> {
    const frames = new Array<string>(texts.length);
    let bytes = 0;
    for (let i = 0; i < texts.length; i++) {
      bytes += (frames[i] = '{"t":"msg",' + texts[i].slice(1)).length;
    }
    if (!(await conn.sendPaced(frames))) return false;
    this.options.onDeliverMany?.("replay", bytes, frames.length);
    return true;
  }

  /**
   * Sends replayed messages (their JSON texts) as `msgs` frames of at most
   * {@link BATCH_FRAME_BYTES} each (or one message, if it is larger), joined as text.
   */
  async #replayBatched(conn: Connection, group: string, texts: string[]) {
    const head = `{"t":"msgs","group":${JSON.stringify(group)},"messages":[`;
    let from = 0;
    let bytes = 0;
    const flush = async (to: number) => {
      const frame = head + texts.slice(from, to).join(",") + "]}";
      const count = to - from;
      from = to;
      bytes = 0;
      if (!(await conn.sendPaced([frame]))) return false;
      this.options.onDeliverMany?.("replay", frame.length, count);
      return true;
    };
    for (let i = 0; i < texts.length; i++) {
      const size = texts[i].length;
      if (i > from && bytes + size > BATCH_FRAME_BYTES && !(await flush(i))) return false;
      bytes += size + 1;
    }
    return from === texts.length || await flush(texts.length);
  }

  /** Stops delivering `groups` (or all) to a connection. */
  unsubscribe(conn: Connection, groups: string[] | null): void {
    if (groups === null) conn.subscribeAll = false;
    for (const group of groups ?? [...conn.subs.keys()]) {
      conn.subs.get(group)?.close();
      conn.subs.delete(group);
      unindex(this.#byGroup, group, conn);
    }
  }

  /** Devices of `accounts` that have a live connection here. */
  onlineDevicesOf(accounts: string[]): string[] {
    const out = new Set<string>();
    for (const account of accounts) {
      for (const conn of this.#byAccount.get(account) ?? []) out.add(conn.device);
    }
    return [...out];
  }

  /**
   * Delivers an ephemeral message to this instance's subscribed devices other than the sender;
   * returns how many devices received it.
   */
  deliverEphemeral(event: Extract<BusEvent, { kind: "eph" }>): number {
    const frame: ServerFrame = { t: "eph", group: event.group, from: event.from, body: event.body };
    if (event.to) frame.to = event.to;
    const text = JSON.stringify(frame);
    const reached = new Set<string>();
    for (const conn of this.#byGroup.get(event.group) ?? []) {
      if (conn.device === event.from.device) continue;
      if (!visibleTo({ to: event.to, from: event.from }, conn.device)) continue;
      if (conn.sendText(text)) reached.add(conn.device);
    }
    return reached.size;
  }

  #onEvent(event: BusEvent): void {
    switch (event.kind) {
      case "messages": {
        const conns = this.#byGroup.get(event.group);
        if (!conns || event.messages.length === 0) return;
        const span = startSpan("sealpost.fan_out", {
          "sealpost.group": event.group,
          "sealpost.seq.first": event.messages[0].seq,
          "sealpost.seq.last": event.messages[event.messages.length - 1].seq,
          "sealpost.connections": conns.size,
        });
        for (const conn of conns) conn.subs.get(event.group)?.offer(event.messages);
        span.end();
        return;
      }
      case "eph":
        if (event.origin !== this.options.instanceId) this.deliverEphemeral(event);
        return;
      case "revoked":
        for (const conn of [...this.#byDevice.get(event.device) ?? []]) {
          this.closeConnection(conn, "device_revoked", "device revoked");
        }
        return;
      case "presence":
        this.#onPresence(event);
        return;
      case "membership":
        this.#onMembership(event);
        return;
    }
  }

  #onPresence(event: Extract<BusEvent, { kind: "presence" }>): void {
    if (this.options.presence === false) return;
    for (const group of event.groups) {
      const frame = serialize({ t: "presence", group, device: event.device, online: event.online });
      for (const conn of this.#byGroup.get(group) ?? []) {
        if (conn.presence && conn.device !== event.device) conn.sendText(frame);
      }
    }
  }

  #onMembership(event: Extract<BusEvent, { kind: "membership" }>): void {
    const { group, account } = event;
    const frame = serialize({ t: "group", group, event: event.event, account });
    if (event.event === "member_added") {
      for (const conn of this.#byAccount.get(account) ?? []) {
        if (conn.groups.has(group)) continue;
        conn.groups.add(group);
        if (event.invited) conn.invited.add(group);
        if (conn.subscribeAll) this.#startSubscription(conn, group, 0);
      }
    } else if (event.event === "member_accepted") {
      const announced = new Set<string>();
      for (const conn of this.#byAccount.get(account) ?? []) {
        if (!conn.invited.delete(group)) continue;
        // Its presence may show now: once per device connected here.
        if (!announced.has(conn.device)) this.#announcePresence(conn, true, group);
        announced.add(conn.device);
      }
    } else if (event.event === "member_removed") {
      for (const conn of this.#byAccount.get(account) ?? []) this.#dropGroup(conn, group);
    }
    for (const target of event.notify) {
      for (const conn of this.#byAccount.get(target) ?? []) conn.sendText(frame);
    }
    if (event.event === "deleted") {
      for (const conn of [...this.#byGroup.get(group) ?? []]) this.#dropGroup(conn, group);
      for (const target of event.notify) {
        for (const conn of this.#byAccount.get(target) ?? []) conn.groups.delete(group);
      }
    }
  }

  #dropGroup(conn: Connection, group: string): void {
    conn.groups.delete(group);
    conn.invited.delete(group);
    conn.subs.get(group)?.close();
    conn.subs.delete(group);
    unindex(this.#byGroup, group, conn);
  }

  /** Closes every connection for `reason` (drain); `stop` ends listening to the bus. */
  closeAll(reason: CloseReason, message?: string): void {
    for (const set of [...this.#byDevice.values()]) {
      for (const conn of [...set]) this.closeConnection(conn, reason, message);
    }
  }

  /** Stops listening to the bus and looking for expired tokens. */
  stop(): void {
    this.#unsubscribeBus();
    clearInterval(this.#expiryTimer);
    this.#expiryTimer = undefined;
  }
}

function index<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (!set) map.set(key, set = new Set());
  set.add(value);
}

function unindex<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}

/** A frame as sent once to many connections. */
function serialize(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

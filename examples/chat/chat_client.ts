/**
 * @module
 * An end-to-end-encrypted group chat device on Sealpost and MLS (RFC 9420, npm `ts-mls`),
 * following docs/mls.md. Runs in browsers and in Deno. The relay only ever sees ciphertext:
 * KeyPackages go through the key-package API, Commits and application messages are group
 * messages whose `seq` is the order every member applies them in, Welcomes are targeted (`to`)
 * messages, images are blobs encrypted with a fresh key that travels inside the MLS message,
 * and typing indicators are ephemeral messages sealed with a key exported from the epoch.
 *
 * Two Commits made in the same epoch race; the one with the lower `seq` wins. Every member sees
 * the same order, so every member picks the same winner: a Commit for an epoch the group has
 * already left is skipped, and its author makes it again on the new state (it "rebases").
 */

import {
  type ClientState,
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeMlsMessage,
  emptyPskIndex,
  encodeMlsMessage,
  joinGroup,
  type KeyPackage,
  mlsExporter,
  type PrivateKeyPackage,
  processPrivateMessage,
  type Proposal,
} from "ts-mls";
import { validateRatchetTree } from "ts-mls/clientState.js";
import {
  b64url,
  createDeviceIdentity,
  type DeviceIdentity,
  type ExportedKeyPair,
  exportKeyPair,
  fromB64url,
  HttpClient,
  importKeyPair,
  type Message,
  SealpostError,
  Session,
} from "../../client/mod.ts";
import {
  ChatGroup,
  type Member,
  membersOf,
  type OutboxEntry,
  type TranscriptEntry,
} from "./chat_group.ts";
import {
  decodePayload,
  decodeWelcomeBody,
  encodePayload,
  encodeWelcomeBody,
  ephemeralEpoch,
  openAttachment,
  openEphemeral,
  type Payload,
  sealAttachment,
  sealEphemeral,
} from "./envelope.ts";
import {
  accountOf,
  authService,
  CIPHERSUITE,
  ciphersuite,
  clientConfig,
  decodeKeyPackage,
  encodeKeyPackage,
  KEY_PACKAGE_KIND,
  keyPackageRef,
  newKeyPackage,
} from "./mls_identity.ts";
import type { ChatStore } from "./store.ts";

export type { Member, TranscriptEntry };

/** What a chat device tells its UI (or test). */
export type ChatEvent =
  | { type: "message"; group: string; entry: TranscriptEntry }
  | { type: "group"; group: string }
  | { type: "removed"; group: string }
  | { type: "typing"; group: string; account: string; name: string }
  | { type: "presence"; group: string; online: string[] }
  | { type: "connection"; state: "connecting" | "ready" | "closed"; code?: number; reason?: string }
  | { type: "error"; group?: string; message: string };

/** Options of {@link ChatClient.open}. */
export type ChatOptions = {
  /** The relay's base URL (or a same-origin proxy of it). */
  url: string;
  store: ChatStore;
  /** The display name this device puts in its (encrypted) messages. */
  name: string;
  /** One-time KeyPackages kept on the relay (topped up when fewer than half are left). */
  keyPackages?: number;
  /** Post a "joined" message after joining a group by Welcome (default true). */
  announce?: boolean;
  fetchFn?: typeof fetch;
  WebSocketImpl?: typeof WebSocket;
  onEvent?(event: ChatEvent): void;
};

type StoredIdentity = { account: string; cert: string; device: ExportedKeyPair; name: string };
type StoredKeyPackage = {
  keyPackage: string;
  privatePackage: PrivateKeyPackage;
  lastResort: boolean;
};

const MAX_REBASES = 10;
/** How long an invite waits for earlier joiners to confirm before giving up. */
const JOIN_WAIT_MS = 30_000;
const EPHEMERAL_LABEL = "sealpost chat ephemeral";

/**
 * A chat device.
 *
 * @example
 * ```ts
 * const alice = await ChatClient.open({ url, store: new MemoryStore(), name: "Alice" });
 * const group = await alice.createGroup();
 * await alice.invite(group, bobAccount);
 * await alice.sendText(group, "hello");
 * ```
 */
export class ChatClient {
  readonly groups = new Map<string, ChatGroup>();
  readonly session: Session;
  #names = new Map<string, string>();
  #online = new Map<string, Set<string>>();
  #ephemeralKeys = new Map<string, Promise<CryptoKey>>();
  #replenishing: Promise<void> | null = null;
  /** How many of this device's Commits lost a race and were made again on the new state. */
  rebases = 0;

  private constructor(
    readonly api: HttpClient,
    readonly identity: DeviceIdentity,
    readonly name: string,
    private readonly options: ChatOptions,
    loaded: ChatGroup[],
  ) {
    for (const group of loaded) this.groups.set(group.id, group);
    for (const group of loaded) this.#learnNames(group.transcript);
    const since: Record<string, number> = {};
    for (const group of loaded) if (group.state && !group.removed) since[group.id] = group.seq;
    this.session = new Session(api, {
      groups: null,
      since,
      presence: true,
      WebSocketImpl: options.WebSocketImpl,
      onMessage: (message) => this.#onMessage(message),
      onEphemeral: (event) => void this.#onEphemeral(event),
      onPresence: (event) => this.#onPresence(event.group, event.device, event.online),
      onGroupEvent: (event) => void this.#onGroupEvent(event),
      onState: (state, detail) => {
        this.#emit({ type: "connection", state, ...detail });
        if (state === "ready") void this.#refreshPresence();
      },
    });
  }

  /** Opens the device kept in `store`, creating and registering one on first use. */
  static async open(options: ChatOptions): Promise<ChatClient> {
    const api = new HttpClient(options.url, options.fetchFn);
    const stored = await options.store.get<StoredIdentity>("identity");
    let identity: DeviceIdentity;
    let name = options.name;
    if (!stored) {
      identity = await createDeviceIdentity();
      // The relay learns a device label, never the person's name (that is in encrypted payloads).
      await api.register(identity, { name: "sealpost chat", platform: "web" });
      await options.store.put({
        identity: {
          account: identity.account,
          cert: identity.cert,
          device: await exportKeyPair(identity.device),
          name,
        } satisfies StoredIdentity,
      });
    } else {
      identity = {
        account: stored.account,
        cert: stored.cert,
        device: await importKeyPair(stored.device),
      };
      name = stored.name;
      try {
        await api.login(identity);
      } catch (error) {
        // Removed by inactivity cleanup: register again (its groups are gone with it).
        if (!(error instanceof SealpostError) || error.code !== "unknown_device") throw error;
        await api.register(identity, { name: "sealpost chat", platform: "web" });
      }
    }
    const client = new ChatClient(
      api,
      identity,
      name,
      options,
      await ChatGroup.loadAll(options.store),
    );
    await client.replenishKeyPackages();
    return client;
  }

  /** This device's account id (what others invite). */
  get account(): string {
    return this.identity.account;
  }

  /** This device's id. */
  get device(): string {
    return this.identity.device.id;
  }

  /** The display name last seen for `account` (or a short id). */
  nameOf(account: string): string {
    if (account === this.account) return this.name;
    return this.#names.get(account) ?? `${account.slice(0, 8)}…`;
  }

  /** Devices online in `group` right now (relay presence). */
  online(group: string): string[] {
    return [...(this.#online.get(group) ?? [])];
  }

  /** Stops the live session. */
  close(): void {
    this.session.close();
  }

  // ---------------------------------------------------------------- KeyPackages

  /**
   * Keeps one-time KeyPackages (and a last resort) on the relay: uploads more when fewer than
   * half of `keyPackages` are left. Private halves are stored first, so a package the relay
   * hands out can always be opened here.
   */
  replenishKeyPackages(): Promise<void> {
    this.#replenishing ??= this.#replenish().finally(() => this.#replenishing = null);
    return this.#replenishing;
  }

  async #replenish(): Promise<void> {
    const target = this.options.keyPackages ?? 5;
    const counts = (await this.api.keyPackageCounts())[KEY_PACKAGE_KIND];
    const available = counts?.available ?? 0;
    const fresh: string[] = [];
    const entries: Record<string, StoredKeyPackage> = {};
    if (available < Math.ceil(target / 2)) {
      for (let i = available; i < target; i++) {
        const pair = await newKeyPackage(this.identity);
        const encoded = encodeKeyPackage(pair.publicPackage);
        entries[`kp:${await keyPackageRef(pair.publicPackage)}`] = {
          keyPackage: encoded,
          privatePackage: pair.privatePackage,
          lastResort: false,
        };
        fresh.push(encoded);
      }
    }
    let lastResort: string | undefined;
    if (!counts?.last_resort) {
      const pair = await newKeyPackage(this.identity);
      lastResort = encodeKeyPackage(pair.publicPackage);
      entries[`kp:${await keyPackageRef(pair.publicPackage)}`] = {
        keyPackage: lastResort,
        privatePackage: pair.privatePackage,
        lastResort: true,
      };
    }
    if (fresh.length === 0 && !lastResort) return;
    await this.options.store.put(entries);
    await this.api.uploadKeyPackages(KEY_PACKAGE_KIND, fresh, lastResort);
  }

  // ---------------------------------------------------------------- Groups

  /** Creates a group on the relay and its MLS group (epoch 0, this device alone). */
  async createGroup(): Promise<string> {
    const info = await this.api.createGroup();
    const own = await newKeyPackage(this.identity);
    const group = new ChatGroup(info.id);
    group.state = await createGroup(
      fromB64url(info.id),
      own.publicPackage,
      own.privatePackage,
      [],
      await ciphersuite(),
      clientConfig,
    );
    group.advance(info.last_seq);
    this.groups.set(group.id, group);
    await group.save(this.options.store);
    this.#emit({ type: "group", group: group.id });
    return group.id;
  }

  /**
   * Invites accounts: makes each a member on the relay (so its devices receive the group),
   * claims one KeyPackage per active device, checks each one is really that account's (device
   * certificate) and adds them all in one Commit; once the Commit has won its `seq`, their
   * Welcome goes to exactly those devices. Resolves with the Commit's `seq` (null when every
   * device was already in).
   */
  async invite(groupId: string, accounts: string | string[]): Promise<number | null> {
    const group = this.#member(groupId);
    const packages: { device: string; keyPackage: KeyPackage }[] = [];
    for (const account of typeof accounts === "string" ? [accounts] : accounts) {
      packages.push(...await this.#claim(groupId, account));
    }
    // ts-mls 1.6.4 rejects, when joining, a tree in which two non-blank ancestors of an added
    // leaf list different unmerged leaves (RFC 9420 only asks that each lists it). So a Commit
    // is sent only if its tree passes that very check: all devices in one Commit when it does,
    // else one device at a time, after the previous joiners' first Commits have merged them.
    let take = packages.length;
    let last: number | null = null;
    const deadline = Date.now() + JOIN_WAIT_MS;
    for (;;) {
      const result = await this.#commit(group, (state) => {
        const present = new Set(membersOfState(state).map((m) => m.device));
        const adds = packages.filter((p) => !present.has(p.device)).slice(0, take);
        if (adds.length === 0) return null;
        return {
          proposals: adds.map((p) => ({ proposalType: "add", add: { keyPackage: p.keyPackage } })),
          welcomeTo: adds.map((p) => p.device),
        };
      }, joinable);
      if (result === null) return last;
      if (result !== "rejected") {
        last = result;
        take = packages.length;
        continue;
      }
      if (take > 1) {
        take = 1;
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error("A device added recently has not confirmed its join yet: try again later");
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Adds `account` on the relay and claims (and checks) its devices' KeyPackages. */
  async #claim(
    groupId: string,
    account: string,
  ): Promise<{ device: string; keyPackage: KeyPackage }[]> {
    await this.api.putMember(groupId, account, "admin");
    const claimed = await this.api.claimKeyPackages(account, KEY_PACKAGE_KIND);
    const packages: { device: string; keyPackage: KeyPackage }[] = [];
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
   * Removes `account` from the group: every one of its devices leaves the MLS group in one
   * Commit, and then its membership on the relay ends, so it receives nothing more at all.
   * Resolves with the Commit's `seq` (null when it was not in the group).
   */
  async remove(groupId: string, account: string): Promise<number | null> {
    if (account === this.account) throw new Error("Leave a group rather than remove yourself");
    const group = this.#member(groupId);
    const seq = await this.#commitOrNull(group, (state) => {
      const leaves = membersOfState(state).filter((m) => m.account === account);
      if (leaves.length === 0) return null;
      return {
        proposals: leaves.map((m) => ({ proposalType: "remove", remove: { removed: m.leaf } })),
        welcomeTo: [],
      };
    });
    await this.api.removeMember(groupId, account).catch((error) => {
      if (!(error instanceof SealpostError) || error.status !== 404) throw error;
    });
    return seq;
  }

  /** Sends a text message; resolves with its `seq`. */
  sendText(groupId: string, text: string): Promise<number> {
    return this.#sendPayload(this.#member(groupId), {
      t: "text",
      from: this.account,
      name: this.name,
      text,
    });
  }

  /** Encrypts an image with a fresh key, uploads it as a blob and sends the key by MLS. */
  async sendImage(
    groupId: string,
    bytes: Uint8Array<ArrayBuffer>,
    mime: string,
    file: string,
  ): Promise<number> {
    const group = this.#member(groupId);
    const sealed = await sealAttachment(bytes);
    const blob = await this.api.putBlob(groupId, sealed.blob);
    return await this.#sendPayload(group, {
      t: "image",
      from: this.account,
      name: this.name,
      blob: blob.id,
      key: sealed.key,
      mime,
      file,
      size: bytes.length,
    }, blob.id);
  }

  /** Downloads and decrypts the image of a transcript entry. */
  async imageBytes(entry: TranscriptEntry): Promise<Uint8Array<ArrayBuffer>> {
    if (!entry.image) throw new Error("This message has no image");
    // Follows the relay's 302 to its signed URL (a browser cannot read a manual redirect).
    const fetchFn = this.options.fetchFn ?? fetch;
    const response = await fetchFn(`${this.api.baseUrl}/v1/blobs/${entry.image.blob}`, {
      headers: { authorization: `Bearer ${this.api.token}` },
    });
    if (!response.ok) throw new Error(`Cannot download the image: ${response.status}`);
    return await openAttachment(new Uint8Array(await response.arrayBuffer()), entry.image.key);
  }

  /** Tells the group this device is typing (ephemeral: never stored). */
  async typing(groupId: string): Promise<void> {
    const group = this.groups.get(groupId);
    if (!group?.state || group.removed) return;
    const key = await this.#ephemeralKey(group, group.state);
    const body = await sealEphemeral(group.epoch, key, {
      t: "typing",
      from: this.account,
      name: this.name,
    });
    await this.session.send(groupId, { body, ephemeral: true }).catch(() => {});
  }

  /**
   * Whether this device could decrypt `body` now (without keeping the result): what a removed
   * member is left with. Used by tests to show a removed member cannot read what follows.
   */
  async canDecrypt(groupId: string, body: string): Promise<boolean> {
    const group = this.groups.get(groupId);
    if (!group?.state) return false;
    try {
      const message = decodeMlsMessage(fromB64url(body), 0)?.[0];
      if (message?.wireformat !== "mls_private_message") return false;
      await processPrivateMessage(
        group.state,
        message.privateMessage,
        emptyPskIndex,
        await ciphersuite(),
      );
      return true;
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------- Sending

  #member(groupId: string): ChatGroup {
    const group = this.groups.get(groupId);
    if (!group?.state || group.removed) throw new Error("This device is not in that group");
    return group;
  }

  async #sendPayload(group: ChatGroup, payload: Payload, blob?: string): Promise<number> {
    return await group.ops.run(async () => {
      let body = "";
      await group.lock.run(async () => {
        const state = group.state;
        if (!state || group.removed) throw new Error("This device is not in that group");
        const result = await createApplicationMessage(
          state,
          encodePayload(payload),
          await ciphersuite(),
        );
        body = b64url(encodeMlsMessage({
          privateMessage: result.privateMessage,
          wireformat: "mls_private_message",
          version: "mls10",
        }));
        group.state = result.newState;
        group.outbox.set(body, this.#entryOf(payload, state.groupContext.epoch));
        await group.save(this.options.store);
      });
      const sent = await this.session.send(group.id, { body, ...(blob ? { blob } : {}) });
      return sent.seq!;
    });
  }

  #entryOf(payload: Payload, epoch: bigint): OutboxEntry {
    return {
      epoch: Number(epoch),
      from: { account: this.account, device: this.device },
      name: payload.name,
      own: true,
      kind: payload.t,
      ...(payload.t === "text" ? { text: payload.text } : {}),
      ...(payload.t === "image"
        ? {
          image: {
            blob: payload.blob,
            key: payload.key,
            mime: payload.mime,
            file: payload.file,
            size: payload.size,
          },
        }
        : {}),
      verified: true,
    };
  }

  /**
   * Makes a Commit from `plan` (null: nothing left to do), sends it and waits for its `seq` to
   * come round in the stream. If another Commit of the same epoch came first, ours lost: the
   * plan runs again on the new state. Resolves with the winning Commit's `seq`, null when the
   * plan found nothing to do, or "rejected" when `accept` refused the state it would lead to.
   */
  async #commit(
    group: ChatGroup,
    plan: (state: ClientState) => { proposals: Proposal[]; welcomeTo: string[] } | null,
    accept?: (next: ClientState) => Promise<boolean>,
  ): Promise<number | "rejected" | null> {
    return await group.ops.run(async () => {
      for (let attempt = 0; attempt < MAX_REBASES; attempt++) {
        let body: string | null = null;
        let rejected = false;
        await group.lock.run(async () => {
          const state = group.state;
          if (!state || group.removed) throw new Error("This device is not in that group");
          const planned = plan(state);
          if (!planned) return;
          const result = await createCommit({ state, cipherSuite: await ciphersuite() }, {
            extraProposals: planned.proposals,
            ratchetTreeExtension: true,
          });
          if (accept && !(await accept(result.newState))) {
            rejected = true;
            return;
          }
          body = b64url(encodeMlsMessage(result.commit));
          group.pending = {
            epoch: state.groupContext.epoch,
            body,
            newState: result.newState,
            welcome: result.welcome
              ? encodeMlsMessage({
                welcome: result.welcome,
                wireformat: "mls_welcome",
                version: "mls10",
              })
              : undefined,
            welcomeTo: planned.welcomeTo,
          };
          await group.save(this.options.store);
        });
        if (rejected) return "rejected";
        if (body === null) return null;
        const sentBody: string = body;
        const outcome = new Promise<boolean>((resolve) => group.outcomes.set(sentBody, resolve));
        let seq: number;
        try {
          seq = (await this.session.send(group.id, { body: sentBody })).seq!;
        } catch (error) {
          group.outcomes.delete(sentBody);
          await group.lock.run(async () => {
            if (group.pending?.body === sentBody) group.pending = null;
            await group.save(this.options.store);
          });
          throw error;
        }
        if (await outcome) return seq;
        this.rebases++;
      }
      throw new Error(`Gave up after ${MAX_REBASES} lost Commit races`);
    });
  }

  async #commitOrNull(
    group: ChatGroup,
    plan: (state: ClientState) => { proposals: Proposal[]; welcomeTo: string[] } | null,
  ): Promise<number | null> {
    const result = await this.#commit(group, plan);
    return result === "rejected" ? null : result;
  }

  /**
   * A new member's first Commit: an empty one, whose UpdatePath gives the device fresh keys
   * (the KeyPackage's are known to whoever added it) and merges it into its parent nodes.
   */
  async #selfUpdate(group: ChatGroup): Promise<void> {
    await this.#commitOrNull(group, () => ({ proposals: [], welcomeTo: [] }));
  }

  // ---------------------------------------------------------------- Receiving

  async #onMessage(message: Message): Promise<void> {
    try {
      if (message.to) {
        if (message.to.includes(this.device) && message.from.device !== this.device) {
          await this.#onWelcome(message);
        }
        return;
      }
      const group = this.groups.get(message.group);
      if (!group?.state || group.removed) return;
      await group.lock.run(() => this.#apply(group, message));
    } catch (error) {
      this.#emit({ type: "error", group: message.group, message: String(error) });
    }
  }

  /** Applies one group message in `seq` order (the caller holds the group lock). */
  async #apply(group: ChatGroup, message: Message): Promise<void> {
    if (message.seq <= group.seq || message.to) return;
    if (message.from.device === this.device) await this.#applyOwn(group, message);
    else await this.#receive(group, message);
    group.advance(message.seq);
    await group.save(this.options.store);
  }

  async #applyOwn(group: ChatGroup, message: Message): Promise<void> {
    const pending = group.pending;
    if (pending?.body === message.body) {
      group.pending = null;
      // Nothing moved the group on before this seq: ours is the Commit of its epoch.
      const won = group.epoch === pending.epoch;
      if (won) {
        group.state = pending.newState;
        if (pending.welcome && pending.welcomeTo.length > 0) {
          await this.session.send(group.id, {
            body: encodeWelcomeBody(message.seq, pending.welcome),
            to: pending.welcomeTo,
          });
        }
        this.#emit({ type: "group", group: group.id });
        void this.#refreshPresence(group.id);
      }
      group.outcomes.get(pending.body)?.(won);
      group.outcomes.delete(pending.body);
      return;
    }
    const entry = group.outbox.get(message.body);
    if (!entry) return;
    group.outbox.delete(message.body);
    this.#record(group, { ...entry, seq: message.seq, at: message.created_at });
  }

  async #receive(group: ChatGroup, message: Message): Promise<void> {
    const state = group.state!;
    let decoded;
    try {
      decoded = decodeMlsMessage(fromB64url(message.body), 0)?.[0];
    } catch {
      return;
    }
    if (decoded?.wireformat !== "mls_private_message") return;
    const pm = decoded.privateMessage;
    if (pm.epoch > state.groupContext.epoch) {
      this.#emit({
        type: "error",
        group: group.id,
        message: `seq ${message.seq} is from a later epoch`,
      });
      return;
    }
    // A Commit for an epoch the group has left lost its race to a lower seq: skip it.
    if (pm.contentType !== "application" && pm.epoch < state.groupContext.epoch) return;
    let result;
    try {
      result = await processPrivateMessage(state, pm, emptyPskIndex, await ciphersuite());
    } catch (error) {
      this.#emit({ type: "error", group: group.id, message: `seq ${message.seq}: ${error}` });
      return;
    }
    group.state = result.newState;
    if (result.kind === "applicationMessage") {
      const payload = decodePayload(result.message);
      if (!payload) return;
      this.#names.set(payload.from, payload.name);
      const own = this.#entryOf(payload, pm.epoch);
      this.#record(group, {
        ...own,
        seq: message.seq,
        at: message.created_at,
        from: message.from,
        own: false,
        verified: payload.from === message.from.account,
      });
      return;
    }
    if (result.newState.groupActiveState.kind === "removedFromGroup") {
      group.removed = true;
      this.#emit({ type: "removed", group: group.id });
    } else {
      this.#emit({ type: "group", group: group.id });
      void this.#refreshPresence(group.id);
    }
  }

  #record(group: ChatGroup, entry: TranscriptEntry): void {
    group.transcript.push(entry);
    this.#emit({ type: "message", group: group.id, entry });
  }

  /**
   * Joins by Welcome: opens it with the matching KeyPackage, then reads the group from just
   * after the Commit that added this device (the Welcome says which `seq` that was).
   */
  async #onWelcome(message: Message): Promise<void> {
    const existing = this.groups.get(message.group);
    if (existing?.state && !existing.removed) return;
    const framed = decodeWelcomeBody(message.body);
    if (!framed) return;
    const decoded = decodeMlsMessage(framed.message, 0)?.[0];
    if (decoded?.wireformat !== "mls_welcome") return;
    let stored: StoredKeyPackage | undefined;
    let storedKey = "";
    for (const secret of decoded.welcome.secrets) {
      storedKey = `kp:${b64url(secret.newMember)}`;
      stored = await this.options.store.get<StoredKeyPackage>(storedKey);
      if (stored) break;
    }
    if (!stored) {
      this.#emit({
        type: "error",
        group: message.group,
        message: "A Welcome for an unknown KeyPackage",
      });
      return;
    }
    const keyPackage = decodeKeyPackage(stored.keyPackage)!;
    // Rejoining after a removal reuses the group (and keeps what was read before).
    const group = existing ?? new ChatGroup(message.group);
    group.removed = false;
    group.pending = null;
    group.outbox.clear();
    group.state = await joinGroup(
      decoded.welcome,
      keyPackage,
      stored.privatePackage,
      emptyPskIndex,
      await ciphersuite(),
      undefined,
      undefined,
      clientConfig,
    );
    group.advance(framed.commitSeq);
    this.groups.set(group.id, group);
    await group.save(this.options.store);
    // A one-time KeyPackage is spent: forget its private half.
    if (!stored.lastResort) await this.options.store.put({ [storedKey]: undefined });
    await group.lock.run(async () => {
      let after = framed.commitSeq;
      for (;;) {
        const page = await this.api.messages(group.id, after, 500);
        for (const m of page.messages) await this.#apply(group, m);
        if (!page.has_more || page.messages.length === 0) break;
        after = page.messages[page.messages.length - 1].seq;
      }
    });
    this.#emit({ type: "group", group: group.id });
    void this.replenishKeyPackages().catch(() => {});
    void this.#refreshPresence();
    // Not awaited: a Commit resolves when its seq comes round in this very message stream.
    const report = (error: unknown) =>
      this.#emit({ type: "error", group: group.id, message: String(error) });
    void this.#selfUpdate(group).catch(report);
    if (this.options.announce !== false) {
      void this.#sendPayload(group, { t: "hello", from: this.account, name: this.name })
        .catch(report);
    }
  }

  async #onGroupEvent(event: { group: string; event: string; account: string }): Promise<void> {
    const group = this.groups.get(event.group);
    if (!group) return;
    const gone = event.event === "deleted" ||
      (event.event === "member_removed" && event.account === this.account);
    if (gone && !group.removed) {
      await group.lock.run(async () => {
        group.removed = true;
        await group.save(this.options.store);
      });
      this.#emit({ type: "removed", group: group.id });
    } else {
      this.#emit({ type: "group", group: group.id });
      // Who is online changes with who is in the group.
      void this.#refreshPresence(group.id);
    }
  }

  async #onEphemeral(
    event: { group: string; from: { account: string; device: string }; body: string },
  ): Promise<void> {
    const group = this.groups.get(event.group);
    const state = group?.state;
    if (!group || !state || group.removed) return;
    if (ephemeralEpoch(event.body) !== state.groupContext.epoch) return;
    const value = await openEphemeral(event.body, await this.#ephemeralKey(group, state)) as {
      t?: string;
      from?: string;
      name?: string;
    } | null;
    if (value?.t !== "typing" || value.from !== event.from.account) return;
    this.#names.set(value.from, String(value.name));
    this.#emit({ type: "typing", group: group.id, account: value.from, name: String(value.name) });
  }

  /** The AES-GCM key of an epoch for ephemeral bodies (MLS exporter). */
  #ephemeralKey(group: ChatGroup, state: ClientState): Promise<CryptoKey> {
    const id = `${group.id}:${state.groupContext.epoch}`;
    let key = this.#ephemeralKeys.get(id);
    if (!key) {
      key = (async () => {
        const raw = await mlsExporter(
          state.keySchedule.exporterSecret,
          EPHEMERAL_LABEL,
          new Uint8Array(0),
          32,
          await ciphersuite(),
        );
        return await crypto.subtle.importKey(
          "raw",
          raw as Uint8Array<ArrayBuffer>,
          "AES-GCM",
          false,
          [
            "encrypt",
            "decrypt",
          ],
        );
      })();
      this.#ephemeralKeys.set(id, key);
    }
    return key;
  }

  #onPresence(groupId: string, device: string, online: boolean): void {
    const set = this.#online.get(groupId) ?? new Set();
    if (online) set.add(device);
    else set.delete(device);
    this.#online.set(groupId, set);
    this.#emit({ type: "presence", group: groupId, online: [...set] });
  }

  async #refreshPresence(only?: string): Promise<void> {
    for (const group of this.groups.values()) {
      if (!group.state || group.removed || (only && group.id !== only)) continue;
      const online = await within(this.session.presence(group.id), 3000, this.online(group.id))
        .catch(() => this.online(group.id));
      this.#online.set(group.id, new Set(online));
      this.#emit({ type: "presence", group: group.id, online });
    }
  }

  #learnNames(transcript: TranscriptEntry[]): void {
    for (const entry of transcript) {
      if (entry.verified) this.#names.set(entry.from.account, entry.name);
    }
  }

  #emit(event: ChatEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch { /* a listener's problem is not ours */ }
  }
}

/** Whether a new member could join `state` (ts-mls runs this check on the joiner's side). */
async function joinable(state: ClientState): Promise<boolean> {
  const error = await validateRatchetTree(
    state.ratchetTree,
    state.groupContext,
    clientConfig.lifetimeConfig,
    clientConfig.authService,
    state.groupContext.treeHash,
    await ciphersuite(),
  );
  return error === undefined;
}

function membersOfState(state: ClientState): Member[] {
  return membersOf(state.ratchetTree);
}

/** `promise`, or `fallback` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((resolve) => setTimeout(() => resolve(fallback), ms)),
  ]);
}

/**
 * @module
 * An E2EE group chat device on Sealpost and MLS (RFC 9420, npm `ts-mls`) per docs/mls.md, for
 * browsers and Deno: open a device, create groups, invite and remove accounts, send text and
 * images, typing and presence. The relay sees only ciphertext: KeyPackages via the key-package
 * API (`device_key_packages.ts`), Commits and messages as group messages in `seq` order, Welcomes
 * as targeted ones (`group_sync.ts`), text sealed without a sender (`sealed_sends.ts`), images as
 * blobs under a key carried by MLS, typing as ephemeral messages (`envelope.ts`), all padded.
 */

import {
  type ClientState,
  createGroup,
  decodeMlsMessage,
  emptyPskIndex,
  encodeMlsMessage,
  processPrivateMessage,
} from "ts-mls";
import {
  b64url,
  createDeviceIdentity,
  type DeviceIdentity,
  exportKeyPair,
  fromB64url,
  HttpClient,
  importKeyPair,
  SealpostError,
  Session,
} from "../../client/mod.ts";
import { ChatGroup, type Member, membersOf, type TranscriptEntry } from "./chat_group.ts";
import {
  type ClaimedKeyPackage,
  claimKeyPackages,
  replenishKeyPackages,
} from "./device_key_packages.ts";
import {
  entryOf,
  ephemeralEpoch,
  ephemeralKey,
  openAttachment,
  openEphemeral,
  type Payload,
  sealAttachment,
  sealEphemeral,
} from "./envelope.ts";
import { type ChatEvent, type CommitPlan, GroupSync, joinable } from "./group_sync.ts";
import { ciphersuite, clientConfig, newKeyPackage } from "./mls_identity.ts";
import { applicationMessage, deliver, publishCapability } from "./sealed_sends.ts";
import { type ChatOptions, JOIN_WAIT_MS, type StoredIdentity, within } from "./chat_options.ts";

export type { ChatEvent, ChatOptions, Member, TranscriptEntry };

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
  readonly #sync: GroupSync;
  #names = new Map<string, string>();
  #online = new Map<string, Set<string>>();
  #ephemeralKeys = new Map<string, Promise<CryptoKey>>();
  #replenishing: Promise<void> | null = null;

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
    // deno-lint-ignore no-this-alias
    const self = this;
    this.#sync = new GroupSync({
      api,
      get session() {
        return self.session;
      },
      store: options.store,
      device: identity.device.id,
      groups: this.groups,
      emit: (event) => this.#emit(event),
      learned: (payload) => this.#names.set(payload.from, payload.name),
      changed: (group) => {
        this.#emit({ type: "group", group: group.id });
        // Who is online changes with who is in the group.
        void this.#refreshPresence(group.id);
      },
      joined: (group) => this.#joined(group),
    });
    this.session = new Session(api, {
      groups: null,
      since,
      presence: true,
      WebSocketImpl: options.WebSocketImpl,
      onMessage: (message) => this.#sync.onMessage(message),
      onEphemeral: (event) => void this.#onEphemeral(event),
      onPresence: (event) => this.#onPresence(event.group, event.device, event.online),
      onGroupEvent: (event) => void this.#onGroupEvent(event),
      onState: (state, detail) => {
        // The page shows three states: connected, trying, or stopped for good.
        const shown = state === "connected"
          ? "ready"
          : state === "connecting" || state === "disconnected"
          ? "connecting"
          : "closed";
        this.#emit({ type: "connection", state: shown, code: detail.code, reason: detail.reason });
        if (state === "connected") void this.#refreshPresence();
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
    const loaded = await ChatGroup.loadAll(options.store);
    const client = new ChatClient(api, identity, name, options, loaded);
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

  /** How many of this device's Commits lost a race and were made again on the new state. */
  get rebases(): number {
    return this.#sync.rebases;
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

  /** Keeps this device's KeyPackages on the relay topped up (see `device_key_packages.ts`). */
  replenishKeyPackages(): Promise<void> {
    this.#replenishing ??= replenishKeyPackages(
      this.api,
      this.options.store,
      this.identity,
      this.options.keyPackages ?? 5,
    ).finally(() => this.#replenishing = null);
    return this.#replenishing;
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
    const packages: ClaimedKeyPackage[] = [];
    for (const account of typeof accounts === "string" ? [accounts] : accounts) {
      await this.api.putMember(groupId, account, "admin");
      packages.push(...await claimKeyPackages(this.api, account));
    }
    // ts-mls 1.6.4 rejects, when joining, a tree in which two non-blank ancestors of an added
    // leaf list different unmerged leaves (RFC 9420 only asks that each lists it). So a Commit
    // is sent only if its tree passes that very check: all devices in one Commit when it does,
    // else one device at a time, after the previous joiners' first Commits have merged them.
    let take = packages.length;
    let last: number | null = null;
    const deadline = Date.now() + JOIN_WAIT_MS;
    for (;;) {
      const result = await this.#sync.commit(group, (state) => {
        const present = new Set(membersOf(state.ratchetTree).map((m) => m.device));
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

  /**
   * Removes `account` from the group: every one of its devices leaves the MLS group in one
   * Commit, and then its membership on the relay ends, so it receives nothing more at all.
   * Resolves with the Commit's `seq` (null when it was not in the group).
   */
  async remove(groupId: string, account: string): Promise<number | null> {
    if (account === this.account) throw new Error("Leave a group rather than remove yourself");
    const group = this.#member(groupId);
    const seq = await this.#commit(group, (state) => {
      const leaves = membersOf(state.ratchetTree).filter((m) => m.account === account);
      if (leaves.length === 0) return null;
      return {
        proposals: leaves.map((m) => ({ proposalType: "remove", remove: { removed: m.leaf } })),
        welcomeTo: [],
      };
    });
    await this.api.removeMember(groupId, account).catch((error) => {
      if (!(error instanceof SealpostError) || error.status !== 404) throw error;
    });
    if (group.state) await publishCapability(this.api, groupId, group.state);
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

  /** Whether this device could decrypt `body` now: tests show a removed member cannot. */
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

  // ---------------------------------------------------------------- Internals

  #member(groupId: string): ChatGroup {
    const group = this.groups.get(groupId);
    if (!group?.state || group.removed) throw new Error("This device is not in that group");
    return group;
  }

  async #commit(group: ChatGroup, plan: CommitPlan): Promise<number | null> {
    const result = await this.#sync.commit(group, plan);
    if (result === "rejected") return null;
    await publishCapability(this.api, group.id, group.state!); // a new epoch's capability
    return result;
  }

  async #sendPayload(group: ChatGroup, payload: Payload, blob?: string): Promise<number> {
    return await group.ops.run(async () => {
      let body = "";
      await group.lock.run(async () => {
        const state = group.state;
        if (!state || group.removed) throw new Error("This device is not in that group");
        const result = await applicationMessage(this.identity.device, group.id, state, payload);
        body = b64url(encodeMlsMessage({
          privateMessage: result.privateMessage,
          wireformat: "mls_private_message",
          version: "mls10",
        }));
        group.state = result.newState;
        const me = { account: this.account, device: this.device };
        group.outbox.set(body, entryOf(payload, state.groupContext.epoch, me, true, true));
        await group.save(this.options.store);
      });
      return await deliver(this.api, this.session, group.id, group.state!, body, blob);
    });
  }

  /**
   * After joining by Welcome: top up KeyPackages, learn who is online, and commit right away —
   * an empty Commit whose UpdatePath gives this device fresh keys (the KeyPackage's were handed
   * around by the relay) and merges it into its parent nodes. Not awaited by the caller: a
   * Commit resolves when its `seq` comes round in the very message stream being handled.
   */
  #joined(group: ChatGroup): void {
    this.#emit({ type: "group", group: group.id });
    const report = (error: unknown) =>
      this.#emit({ type: "error", group: group.id, message: String(error) });
    void this.api.acceptGroup(group.id).catch(report); // consent: joined by Welcome
    void this.replenishKeyPackages().catch(report);
    void this.#refreshPresence(group.id);
    void this.#commit(group, () => ({ proposals: [], welcomeTo: [] })).catch(report);
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

  /** The AES-GCM key of an epoch for ephemeral bodies (cached per group and epoch). */
  #ephemeralKey(group: ChatGroup, state: ClientState): Promise<CryptoKey> {
    const id = `${group.id}:${state.groupContext.epoch}`;
    let key = this.#ephemeralKeys.get(id);
    if (!key) this.#ephemeralKeys.set(id, key = ephemeralKey(state));
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
    for (const e of transcript) if (e.verified) this.#names.set(e.from.account, e.name);
  }

  #emit(event: ChatEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch { /* a listener's problem is not ours */ }
  }
}

/**
 * @module
 * The Delivery Service side of one chat device (docs/mls.md "Order" and "Joining"): applies each
 * group's messages strictly in `seq` order — other members' Commits and application messages,
 * and the echoes of its own — joins by Welcome, and makes Commits that may lose a race.
 *
 * Two Commits made in the same epoch race; the one with the lower `seq` wins. Every member sees
 * the same order, so every member picks the same winner: a Commit for an epoch the group has
 * already left is skipped, and its author makes it again on the new state (it "rebases"). A
 * Welcome is sent only for a Commit that won, so nobody joins a branch that lost.
 */

import {
  type ClientState,
  createCommit,
  decodeMlsMessage,
  emptyPskIndex,
  encodeMlsMessage,
  joinGroup,
  processPrivateMessage,
  type Proposal,
} from "ts-mls";
import { validateRatchetTree } from "ts-mls/clientState.js";
import {
  b64url,
  fromB64url,
  type HttpClient,
  type Message,
  type Session,
} from "../../client/mod.ts";
import { ChatGroup, type TranscriptEntry } from "./chat_group.ts";
import { welcomeKeyPackage } from "./device_key_packages.ts";
import { sealedSender } from "./sealed_sends.ts";
import {
  decodePayload,
  decodeWelcomeBody,
  encodeWelcomeBody,
  entryOf,
  type Payload,
} from "./envelope.ts";
import { ciphersuite, clientConfig } from "./mls_identity.ts";
import type { ChatStore } from "./store.ts";

/** What a chat device tells its UI (or test). */
export type ChatEvent =
  | { type: "message"; group: string; entry: TranscriptEntry }
  | { type: "group"; group: string }
  | { type: "removed"; group: string }
  | { type: "typing"; group: string; account: string; name: string }
  | { type: "presence"; group: string; online: string[] }
  | { type: "connection"; state: "connecting" | "ready" | "closed"; code?: number; reason?: string }
  | { type: "error"; group?: string; message: string };

/** What a Commit is to do, planned against the state it will be made on. */
export type CommitPlan = (
  state: ClientState,
) => { proposals: Proposal[]; welcomeTo: string[] } | null;

/** What the sync needs from the device around it. */
export type SyncHost = {
  readonly api: HttpClient;
  readonly session: Session;
  readonly store: ChatStore;
  readonly device: string;
  readonly groups: Map<string, ChatGroup>;
  emit(event: ChatEvent): void;
  /** An application payload was decrypted. */
  learned(payload: Payload): void;
  /** The MLS membership of `group` changed. */
  changed(group: ChatGroup): void;
  /** This device joined `group` by Welcome and has caught up. */
  joined(group: ChatGroup): void;
};

const MAX_REBASES = 10;

/** Ordered processing and Commits for the groups of one device. */
export class GroupSync {
  /** How many of this device's Commits lost a race and were made again on the new state. */
  rebases = 0;

  constructor(private readonly host: SyncHost) {}

  /**
   * Makes a Commit from `plan` (null: nothing left to do), sends it and waits for its `seq` to
   * come round in the stream. If another Commit of the same epoch came first, ours lost: the
   * plan runs again on the new state. Resolves with the winning Commit's `seq`, null when the
   * plan found nothing to do, or "rejected" when `accept` refused the state it would lead to.
   */
  async commit(
    group: ChatGroup,
    plan: CommitPlan,
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
          await group.save(this.host.store);
        });
        if (rejected) return "rejected";
        if (body === null) return null;
        const sentBody: string = body;
        const outcome = new Promise<boolean>((resolve) => group.outcomes.set(sentBody, resolve));
        let seq: number;
        try {
          seq = (await this.host.session.send(group.id, { body: sentBody })).seq!;
        } catch (error) {
          group.outcomes.delete(sentBody);
          await group.lock.run(async () => {
            if (group.pending?.body === sentBody) group.pending = null;
            await group.save(this.host.store);
          });
          throw error;
        }
        if (await outcome) return seq;
        this.rebases++;
      }
      throw new Error(`Gave up after ${MAX_REBASES} lost Commit races`);
    });
  }

  /** Handles one message of the session's stream (they come in `seq` order per group). */
  async onMessage(message: Message): Promise<void> {
    const { host } = this;
    try {
      if (message.to) {
        if (message.to.includes(host.device) && message.from?.device !== host.device) {
          await this.#onWelcome(message);
        }
        return;
      }
      const group = host.groups.get(message.group);
      if (!group?.state || group.removed) return;
      await group.lock.run(() => this.#apply(group, message));
    } catch (error) {
      host.emit({ type: "error", group: message.group, message: String(error) });
    }
  }

  /** Applies one group message in `seq` order (the caller holds the group lock). */
  async #apply(group: ChatGroup, message: Message): Promise<void> {
    if (message.seq <= group.seq || message.to) return;
    // Our own sealed messages come back with no sender: the outbox knows their bodies.
    const own = message.from === null ? group.outbox.has(message.body) : (
      message.from.device === this.host.device
    );
    if (own) await this.#applyOwn(group, message);
    else await this.#receive(group, message);
    group.advance(message.seq);
    await group.save(this.host.store);
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
          await this.host.session.send(group.id, {
            body: encodeWelcomeBody(message.seq, pending.welcome),
            to: pending.welcomeTo,
          });
        }
        this.host.changed(group);
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
    const { host } = this;
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
      host.emit({
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
      host.emit({ type: "error", group: group.id, message: `seq ${message.seq}: ${error}` });
      return;
    }
    group.state = result.newState;
    if (result.kind === "applicationMessage") {
      const payload = decodePayload(result.message);
      if (!payload) return;
      host.learned(payload);
      // A sealed message (from: null) proves its sender inside the ciphertext (sealed_sends.ts).
      const from = message.from ??
        await sealedSender(payload, group.id, pm.epoch, result.newState.ratchetTree);
      const verified = from !== null && payload.from === from.account;
      this.#record(group, {
        ...entryOf(
          payload,
          pm.epoch,
          from ?? { account: payload.from, device: "" },
          false,
          verified,
        ),
        seq: message.seq,
        at: message.created_at,
      });
      return;
    }
    if (result.newState.groupActiveState.kind === "removedFromGroup") {
      group.removed = true;
      host.emit({ type: "removed", group: group.id });
    } else {
      host.changed(group);
    }
  }

  #record(group: ChatGroup, entry: TranscriptEntry): void {
    group.transcript.push(entry);
    this.host.emit({ type: "message", group: group.id, entry });
  }

  /**
   * Joins by Welcome: opens it with the matching KeyPackage, then reads the group from just
   * after the Commit that added this device (the Welcome says which `seq` that was).
   */
  async #onWelcome(message: Message): Promise<void> {
    const { host } = this;
    const existing = host.groups.get(message.group);
    if (existing?.state && !existing.removed) return;
    const framed = decodeWelcomeBody(message.body);
    if (!framed) return;
    const decoded = decodeMlsMessage(framed.message, 0)?.[0];
    if (decoded?.wireformat !== "mls_welcome") return;
    const mine = await welcomeKeyPackage(host.store, decoded.welcome);
    if (!mine) {
      host.emit({
        type: "error",
        group: message.group,
        message: "A Welcome for an unknown KeyPackage",
      });
      return;
    }
    // Rejoining after a removal reuses the group (and keeps what was read before).
    const group = existing ?? new ChatGroup(message.group);
    group.removed = false;
    group.pending = null;
    group.outbox.clear();
    group.state = await joinGroup(
      decoded.welcome,
      mine.keyPackage,
      mine.privatePackage,
      emptyPskIndex,
      await ciphersuite(),
      undefined,
      undefined,
      clientConfig,
    );
    group.advance(framed.commitSeq);
    host.groups.set(group.id, group);
    await group.save(host.store);
    await mine.spend();
    await group.lock.run(async () => {
      let after = framed.commitSeq;
      for (;;) {
        const page = await host.api.messages(group.id, after, 500);
        for (const m of page.messages) await this.#apply(group, m);
        if (!page.has_more || page.messages.length === 0) break;
        after = page.messages[page.messages.length - 1].seq;
      }
    });
    host.joined(group);
  }
}

/** Whether a new member could join `state` (ts-mls runs this check on the joiner's side). */
export async function joinable(state: ClientState): Promise<boolean> {
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

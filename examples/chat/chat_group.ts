/**
 * @module
 * One chat group as a device holds it: the MLS state and the highest `seq` it reflects, a Commit
 * of ours waiting for its `seq` to decide whether it won, our own application messages waiting
 * to be seen in the stream, and the decrypted transcript — with how all of it is saved (one
 * atomic write per processed message) and read back after a reload.
 */

import { type ClientState, decodeGroupState, encodeGroupState, type RatchetTree } from "ts-mls";
import { b64url } from "../../client/mod.ts";
import { accountOf, clientConfig } from "./mls_identity.ts";
import type { ChatStore } from "./store.ts";

/** A decrypted message as the transcript keeps it. */
export type TranscriptEntry = {
  seq: number;
  /** The MLS epoch it was sent in. */
  epoch: number;
  from: { account: string; device: string };
  name: string;
  own: boolean;
  at: number;
  kind: "text" | "image" | "hello";
  text?: string;
  image?: { blob: string; key: string; mime: string; file: string; size: number };
  /** The account inside the MLS-protected payload matches the relay's `from`. */
  verified: boolean;
};

/** A Commit of ours sent but not yet ordered: whether it won is known at its `seq`. */
export type PendingCommit = {
  /** The epoch it was made in: it wins if the group is still there when its `seq` comes. */
  epoch: bigint;
  body: string;
  newState: ClientState;
  /** The Welcome (`MLSMessage` bytes) for the devices it adds, sent once it has won. */
  welcome?: Uint8Array;
  welcomeTo: string[];
};

/** An application message of ours waiting to be seen (with its `seq`) in the stream. */
export type OutboxEntry = Omit<TranscriptEntry, "seq" | "at">;

/** A member device as the MLS tree shows it. */
export type Member = { account: string; device: string; leaf: number };

type SavedGroup = {
  id: string;
  state: Uint8Array | null;
  seq: number;
  removed: boolean;
  pending: Omit<PendingCommit, "newState"> & { newState: Uint8Array } | null;
  outbox: [string, OutboxEntry][];
};

/** Runs tasks one at a time, in call order. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => {});
    return result;
  }
}

/** Reads a saved MLS state back, with the example's client configuration. */
export function loadState(bytes: Uint8Array): ClientState {
  const decoded = decodeGroupState(bytes, 0);
  if (!decoded) throw new Error("Cannot decode a saved MLS group state");
  return { ...decoded[0], clientConfig };
}

/** The member devices of an MLS tree (a device id is its leaf's signature key). */
export function membersOf(tree: RatchetTree): Member[] {
  const out: Member[] = [];
  tree.forEach((node, index) => {
    if (node?.nodeType !== "leaf") return;
    const account = accountOf(node.leaf.credential);
    if (account) {
      out.push({ account, device: b64url(node.leaf.signaturePublicKey), leaf: index / 2 });
    }
  });
  return out;
}

/** One group on this device. */
export class ChatGroup {
  state: ClientState | null = null;
  seq = 0;
  removed = false;
  pending: PendingCommit | null = null;
  readonly outbox = new Map<string, OutboxEntry>();
  transcript: TranscriptEntry[] = [];
  /** Guards the MLS state: processing a message, or making one. */
  readonly lock = new Mutex();
  /** Orders this device's own operations (sends, commits) on the group. */
  readonly ops = new Mutex();
  /** Who waits for the outcome of a pending Commit (by its body). */
  readonly outcomes = new Map<string, (won: boolean) => void>();
  #seqWaiters: { seq: number; resolve: () => void }[] = [];

  constructor(readonly id: string) {}

  /** The current epoch (0 before joining). */
  get epoch(): bigint {
    return this.state?.groupContext.epoch ?? 0n;
  }

  /** Member devices in the current epoch. */
  members(): Member[] {
    return this.state ? membersOf(this.state.ratchetTree) : [];
  }

  /** Resolves once the group has processed everything up to `seq`. */
  processed(seq: number): Promise<void> {
    if (this.seq >= seq) return Promise.resolve();
    return new Promise((resolve) => this.#seqWaiters.push({ seq, resolve }));
  }

  /** Marks `seq` processed and wakes whoever waited for it. */
  advance(seq: number): void {
    if (seq > this.seq) this.seq = seq;
    const ready = this.#seqWaiters.filter((w) => w.seq <= this.seq);
    this.#seqWaiters = this.#seqWaiters.filter((w) => w.seq > this.seq);
    for (const waiter of ready) waiter.resolve();
  }

  /** Saves the state, its `seq`, the pending Commit, the outbox and the transcript at once. */
  async save(store: ChatStore): Promise<void> {
    const saved: SavedGroup = {
      id: this.id,
      state: this.state ? encodeGroupState(this.state) : null,
      seq: this.seq,
      removed: this.removed,
      pending: this.pending
        ? { ...this.pending, newState: encodeGroupState(this.pending.newState) }
        : null,
      outbox: [...this.outbox],
    };
    await store.put({ [`group:${this.id}`]: saved, [`transcript:${this.id}`]: this.transcript });
  }

  /** Reads every saved group back. */
  static async loadAll(store: ChatStore): Promise<ChatGroup[]> {
    const out: ChatGroup[] = [];
    for (const key of await store.keys("group:")) {
      const saved = await store.get<SavedGroup>(key);
      if (!saved) continue;
      const group = new ChatGroup(saved.id);
      group.state = saved.state ? loadState(saved.state) : null;
      group.seq = saved.seq;
      group.removed = saved.removed;
      group.pending = saved.pending
        ? { ...saved.pending, newState: loadState(saved.pending.newState) }
        : null;
      for (const [body, entry] of saved.outbox) group.outbox.set(body, entry);
      group.transcript = await store.get<TranscriptEntry[]>(`transcript:${saved.id}`) ?? [];
      out.push(group);
    }
    return out;
  }
}

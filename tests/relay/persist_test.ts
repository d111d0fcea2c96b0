import assert from "node:assert/strict";
import { Session } from "../../client/mod.ts";
import { systemClock } from "../../relay/base/clock.ts";
import { silentLogger } from "../../relay/base/log.ts";
import { LocalBus } from "../../relay/bus/bus_local.ts";
import { RelayError } from "../../relay/errors.ts";
import type { StoredMessage } from "../../relay/messages.ts";
import {
  expiryOf,
  GroupCommit,
  type GroupCommitOptions,
  laneOf,
  MAX_BATCH,
  SEND_OVERHEAD_BYTES,
} from "../../relay/persist.ts";
import { cipher, newDevice } from "../helpers/accounts.ts";
import {
  type DbKind,
  openTestDatabase,
  startTestRelay,
  testBothDatabases,
} from "../helpers/relay.ts";

Deno.test("expiryOf() caps ttl by retention and by max ttl; forever is null", () => {
  assert.equal(expiryOf(0, undefined, 60, null), 60_000);
  assert.equal(expiryOf(0, 10, 60, null), 10_000);
  assert.equal(expiryOf(0, 100, 60, null), 60_000);
  assert.equal(expiryOf(0, 100, 0, 30_000), 30_000);
  assert.equal(expiryOf(0, undefined, 0, null), null);
  assert.equal(expiryOf(0, 5, 0, null), 5_000);
});

testBothDatabases(
  "send() assigns gap-free seq under concurrency; a reader following after=<highest> never misses one",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const senders = await Promise.all(
        Array.from({ length: 6 }, (_, i) => newDevice(t.url, `sender ${i}`)),
      );
      const [owner] = senders;
      const group = await owner.api.createGroup({
        members: senders.slice(1).map((s) => s.account),
      });
      const perSender = 40;
      const total = perSender * senders.length;

      // A reader that polls continuously, always from the highest seq it has seen.
      const seen: number[] = [];
      let highest = 0;
      let done = false;
      const reader = (async () => {
        for (let rounds = 0; rounds < 20_000 && !done; rounds++) {
          const page = await owner.api.messages(group.id, highest, 1000);
          for (const m of page.messages) {
            assert.equal(m.seq, highest + 1, `reader saw ${m.seq} after ${highest}: a gap`);
            highest = m.seq;
            seen.push(m.seq);
          }
          if (highest >= total) return;
          await new Promise((r) => setTimeout(r, 2));
        }
      })();

      const results = await Promise.all(senders.map(async (s) => {
        const mine: number[] = [];
        // Each sender keeps several sends in flight at once.
        for (let batch = 0; batch < perSender; batch += 8) {
          const sends = [];
          for (let i = batch; i < Math.min(perSender, batch + 8); i++) {
            sends.push(s.api.send(group.id, { body: cipher(64), client_id: `m${i}` }));
          }
          for (const r of await Promise.all(sends)) mine.push(r.seq!);
        }
        return mine;
      }));
      await reader;
      done = true;
      const all = results.flat().sort((a, b) => a - b);
      assert.deepEqual(
        all,
        Array.from({ length: total }, (_, i) => i + 1),
        "every seq 1..N assigned once",
      );
      assert.deepEqual(seen, all, "the reader saw every message in order");
      const page = await owner.api.messages(group.id, 0, 1000);
      assert.equal(page.last_seq, total);
    } finally {
      await t.stop();
    }
  },
);

testBothDatabases(
  "send() with the same client_id in flight at once stores one message",
  async (db) => {
    const t = await startTestRelay({ db, env: { SEALPOST_RATE_SEND: "off" } });
    try {
      const alice = await newDevice(t.url);
      const group = await alice.api.createGroup();
      const body = cipher();
      const results = await Promise.all(
        Array.from({ length: 10 }, () => alice.api.send(group.id, { body, client_id: "same" })),
      );
      assert.deepEqual(new Set(results.map((r) => r.seq)), new Set([1]));
      assert.equal(results.filter((r) => r.status === 201).length, 1);
      assert.equal((await alice.api.messages(group.id)).last_seq, 1);
    } finally {
      await t.stop();
    }
  },
);

/** A migrated database with `groups` groups of `size` member accounts, for GroupCommit alone. */
async function commitFixture(kind: DbKind, groupCount: number, size: number) {
  const { handle } = await openTestDatabase(kind);
  const now = Date.now();
  const accounts = Array.from({ length: groupCount * size }, (_, i) => `acct${i}`);
  const groups = Array.from({ length: groupCount }, (_, i) => `grp${i}`.padEnd(22, "x"));
  await handle.db.insertInto("accounts").values(accounts.map((id) => ({ id, created_at: now })))
    .execute();
  await handle.db.insertInto("groups").values(
    groups.map((id) => ({ id, last_seq: 0, retention_s: 3600, created_at: now })),
  ).execute();
  await handle.db.insertInto("group_members").values(accounts.map((account_id, i) => ({
    group_id: groups[Math.floor(i / size)],
    account_id,
    role: "member" as const,
    added_at: now,
  }))).execute();
  const published: StoredMessage[][] = [];
  const commitWith = (options: Partial<GroupCommitOptions> = {}) =>
    new GroupCommit({
      db: handle.db,
      bus: new LocalBus(),
      clock: systemClock,
      log: silentLogger,
      maxTtlMs: 7_200_000,
      windowMs: 1,
      onCommitted: (lists) => published.push(...lists),
      ...options,
    });
  const member = (i: number) => ({ group: groups[Math.floor(i / size)], account: accounts[i] });
  return { handle, groups, accounts, published, commitWith, member };
}

testBothDatabases(
  "sealpost_commit accepts an invitation in the commit (accept, migration 0010), once, within the group quota",
  async (kind) => {
    const f = await commitFixture(kind, 2, 2);
    try {
      const alice = f.member(0); // group 0
      const carol = f.member(2); // group 1
      const elsewhere = { group: carol.group, account: alice.account };
      const now = Date.now();
      await f.handle.db.insertInto("group_members").values({
        group_id: elsewhere.group,
        account_id: elsewhere.account,
        role: "member",
        added_at: now,
        state: "invited",
      }).execute();
      await f.handle.db.updateTable("group_members").set({ state: "invited" })
        .where("account_id", "in", [alice.account, carol.account]).execute();
      const commit = f.commitWith({ maxGroupsPerAccount: 1 });
      const send = (who: { group: string; account: string }, clientId: string, extra = {}) =>
        commit.submit({ ...who, device: who.account, clientId, bodyText: cipher(16), ...extra });
      const state = async (who: { group: string; account: string }) =>
        (await f.handle.db.selectFrom("group_members").select("state")
          .where("group_id", "=", who.group).where("account_id", "=", who.account)
          .executeTakeFirstOrThrow()).state;

      const [a1, a2, c1, c2] = await Promise.allSettled([
        send(alice, "a1", { accept: true }),
        send(alice, "a2", { accept: true }),
        send(carol, "c1", { accept: true, blob: { id: "nosuchblob", size: 1 } }),
        send(carol, "c2"), // not marked: the membership stays as it is (a WebSocket knows it)
      ]);
      assert.ok(a1.status === "fulfilled" && a2.status === "fulfilled");
      assert.equal(a1.value.accepted, true, "the first send of the batch accepted");
      assert.equal(a2.value.accepted, undefined, "one announcement per acceptance");
      assert.deepEqual([a1.value.seq, a2.value.seq], [1, 2]);
      assert.equal(await state(alice), "accepted");
      assert.ok(c1.status === "rejected" && c1.reason.code === "not_found");
      assert.ok(c2.status === "fulfilled" && c2.value.accepted === undefined);
      assert.equal(await state(carol), "invited", "a refused send accepts nothing");

      // Alice is now in one accepted group, the quota here: her send elsewhere is refused 409,
      // takes no seq, and leaves the invitation as it was.
      await assert.rejects(send(elsewhere, "e1", { accept: true }), (error: unknown) => {
        assert.ok(error instanceof RelayError);
        assert.equal(error.code, "conflict");
        return true;
      });
      assert.equal(await state(elsewhere), "invited");
      const c3 = await send(carol, "c3", { accept: true });
      assert.equal(c3.accepted, true);
      assert.equal(c3.seq, 2, "the refused sends took no seq");
      assert.equal(await state(carol), "accepted");
    } finally {
      await f.handle.close();
    }
  },
);

testBothDatabases(
  "sealpost_commit in one statement: repeats in and across batches answer the original, a refused send takes no seq, ttl is capped",
  async (kind) => {
    const f = await commitFixture(kind, 2, 2);
    try {
      const commit = f.commitWith();
      const alice = f.member(0); // group 0
      const carol = f.member(2); // group 1
      const send = (who: { group: string; account: string }, clientId: string, extra = {}) =>
        commit.submit({
          ...who,
          device: who.account,
          clientId,
          bodyText: cipher(16),
          ...extra,
        });
      const outcomes = await Promise.allSettled([
        send(alice, "a1", { ttlS: 60 }),
        send(alice, "a1"), // the same client_id in the same batch
        send({ group: alice.group, account: carol.account }, "x"), // not a member
        send({ group: "nosuchgroupxxxxxxxxxxx", account: carol.account }, "y"),
        send(alice, "a2", { ttlS: 999_999 }), // capped by the group's retention (3600 s)
        send(carol, "c1", { blob: { id: "nosuchblob", size: 1 } }),
        send(carol, "c2", { to: ["dev1", "dev2"] }),
      ]);
      const [a1, a1again, notMember, noGroup, a2, noBlob, c2] = outcomes;
      assert.ok(a1.status === "fulfilled" && a1again.status === "fulfilled");
      assert.equal(a1.value.seq, 1);
      assert.equal(a1.value.duplicate, false);
      assert.deepEqual(a1again.value, { ...a1.value, duplicate: true });
      assert.equal(a1.value.expires_at, a1.value.created_at + 60_000);
      for (const refused of [notMember, noGroup, noBlob]) {
        assert.ok(refused.status === "rejected");
        assert.ok(refused.reason instanceof RelayError);
        assert.equal(refused.reason.code, "not_found");
      }
      assert.ok(a2.status === "fulfilled" && c2.status === "fulfilled");
      assert.equal(a2.value.seq, 2, "the refused sends took no seq");
      assert.equal(a2.value.expires_at, a2.value.created_at + 3_600_000);
      assert.equal(c2.value.seq, 1, "another group counts on its own");

      // A later batch repeating a1 gets the original; the stored rows are what was sent.
      const again = await send(alice, "a1");
      assert.deepEqual(again, { ...a1.value, duplicate: true });
      const rows = await f.handle.db.selectFrom("messages").select([
        "group_id",
        "seq",
        "to_devices",
      ])
        .orderBy("group_id").orderBy("seq").execute();
      assert.deepEqual(rows, [
        { group_id: alice.group, seq: 1, to_devices: null },
        { group_id: alice.group, seq: 2, to_devices: null },
        { group_id: carol.group, seq: 1, to_devices: ["dev1", "dev2"] },
      ]);
      const last = await f.handle.db.selectFrom("groups").select(["id", "last_seq"]).orderBy("id")
        .execute();
      assert.deepEqual(last.map((g) => g.last_seq), [2, 1]);
      assert.deepEqual(
        f.published.flat().map((m) => `${m.group}#${m.seq}`).sort(),
        [`${alice.group}#1`, `${alice.group}#2`, `${carol.group}#1`].sort(),
        "only new messages are published",
      );
    } finally {
      await f.handle.close();
    }
  },
);

testBothDatabases(
  "one group's sends queued at once commit in batches of at most MAX_BATCH: gap-free, in order, repeats and refusals answered",
  async (kind) => {
    const f = await commitFixture(kind, 2, 2);
    try {
      const sizes: number[] = [];
      const commit = f.commitWith({ onBatch: (size) => sizes.push(size) });
      const n = MAX_BATCH + 50;
      const send = (who: { group: string; account: string }, clientId: string) =>
        commit.submit({ ...who, device: who.account, clientId, bodyText: cipher(16) });
      const group0 = f.member(0).group;
      const fresh = Array.from({ length: n }, (_, i) => send(f.member(i % 2), `m${i}`));
      // Queued last, so in the second batch: a repeat of m5 (committed in the first) and a send
      // by a non-member.
      const repeat = send(f.member(5 % 2), "m5");
      const stranger = send({ group: group0, account: f.member(2).account }, "x");
      const results = await Promise.all(fresh);
      assert.deepEqual(results.map((r) => r.seq), Array.from({ length: n }, (_, i) => i + 1));
      assert.deepEqual(results.map((r) => r.duplicate), Array(n).fill(false));
      const again = await repeat;
      assert.equal(again.seq, 6);
      assert.equal(again.duplicate, true);
      await assert.rejects(stranger, (e) => e instanceof RelayError && e.code === "not_found");
      assert.deepEqual(sizes, [MAX_BATCH, 52]);
      const stored = await f.handle.db.selectFrom("messages").select((eb) =>
        eb.fn.countAll().as("n")
      )
        .where("group_id", "=", group0).executeTakeFirstOrThrow();
      assert.equal(Number(stored.n), n);
    } finally {
      await f.handle.close();
    }
  },
);

Deno.test("laneOf() maps a group to the same lane every time, spread over all lanes", () => {
  const groups = Array.from({ length: 400 }, (_, i) => `group-${i}`);
  const lanes = groups.map((g) => laneOf(g, 5));
  assert.deepEqual(groups.map((g) => laneOf(g, 5)), lanes);
  assert.deepEqual(new Set(lanes), new Set([0, 1, 2, 3, 4]));
  assert.equal(laneOf("anything", 1), 0);
});

testBothDatabases(
  "lanes: batches of many groups in flight at once keep every group's seqs gap-free and published in order",
  async (kind) => {
    const f = await commitFixture(kind, 24, 2);
    try {
      const commit = f.commitWith({ lanes: 4, maxBatch: 16 });
      const perMember = 12;
      const sends = [];
      for (let round = 0; round < perMember; round++) {
        for (let i = 0; i < f.accounts.length; i++) {
          const who = f.member(i);
          sends.push(
            commit.submit({
              ...who,
              device: who.account,
              clientId: `r${round}`,
              bodyText: cipher(16),
            }).then((r) => ({ group: who.group, account: who.account, round, seq: r.seq })),
          );
        }
      }
      const results = await Promise.all(sends);
      await commit.idle();
      assert.equal(commit.queued, 0);
      assert.equal(commit.queuedBytes, 0);
      for (const group of f.groups) {
        const mine = results.filter((r) => r.group === group);
        assert.deepEqual(
          mine.map((r) => r.seq).sort((a, b) => a - b),
          Array.from({ length: mine.length }, (_, i) => i + 1),
          `group ${group}: every seq once`,
        );
        // One sender's sends are committed in the order it submitted them.
        for (const account of new Set(mine.map((r) => r.account))) {
          const seqs = mine.filter((r) => r.account === account).map((r) => r.seq);
          assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
        }
        const published = f.published.filter((list) => list[0].group === group).flat();
        assert.deepEqual(
          published.map((m) => m.seq),
          Array.from({ length: mine.length }, (_, i) => i + 1),
          `group ${group}: published in seq order`,
        );
      }
    } finally {
      await f.handle.close();
    }
  },
);

testBothDatabases(
  "a full commit queue refuses with unavailable and retry_after_ms; retries under the same client_id store each message once",
  async (kind) => {
    const f = await commitFixture(kind, 1, 2);
    try {
      const body = cipher(64);
      const perSend = body.length + SEND_OVERHEAD_BYTES;
      const commit = f.commitWith({ maxQueuedBytes: 5 * perSend });
      const who = f.member(0);
      const submit = (n: number) =>
        commit.submit({ ...who, device: who.account, clientId: `m${n}`, bodyText: body });
      const first = await Promise.allSettled(Array.from({ length: 40 }, (_, n) => submit(n)));
      const accepted = first.filter((r) => r.status === "fulfilled");
      const refused = first.flatMap((r, n) => r.status === "rejected" ? [{ n, r }] : []);
      assert.equal(accepted.length, 5, "the bound held: five queued at once");
      for (const { r } of refused) {
        assert.ok(r.reason instanceof RelayError);
        assert.equal(r.reason.code, "unavailable");
        assert.ok(r.reason.retryAfterMs! >= 100 && r.reason.retryAfterMs! <= 5000);
      }
      assert.equal(commit.queuedBytes, 0, "nothing stays counted once committed");

      // Retry what was refused, each under its own client_id, until everything is in.
      let left = refused.map((x) => x.n);
      for (let round = 0; round < 100 && left.length > 0; round++) {
        const again = await Promise.allSettled(left.map(submit));
        left = left.filter((_, i) => again[i].status === "rejected");
      }
      assert.deepEqual(left, []);
      const all = [];
      for (let n = 0; n < 40; n += 5) {
        all.push(...await Promise.all([n, n + 1, n + 2, n + 3, n + 4].map(submit)));
      }
      assert.ok(all.every((r) => r.duplicate), "every retry answered the original");
      assert.deepEqual(
        all.map((r) => r.seq).sort((a, b) => a - b),
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
      const stored = await f.handle.db.selectFrom("messages").select("seq").execute();
      assert.equal(stored.length, 40, "each message stored once");
    } finally {
      await f.handle.close();
    }
  },
);

testBothDatabases(
  "the SDK retries refused sends after retry_after_ms under the same client_id: all land once",
  async (db) => {
    const t = await startTestRelay({
      db,
      env: { SEALPOST_RATE_SEND: "off", SEALPOST_COMMIT_QUEUE_BYTES: "10KiB" },
    });
    try {
      const alice = await newDevice(t.url);
      const group = await alice.api.createGroup();
      const refusals: unknown[] = [];
      const session = new Session(alice.api, {
        groups: [group.id],
        onError: (e) => {
          if (e.code === "unavailable") refusals.push(e);
        },
      });
      await session.ready();
      const replies = await Promise.all(
        Array.from({ length: 30 }, () => session.send(group.id, { body: cipher(64) })),
      );
      assert.ok(refusals.length > 0, "the bound refused some sends");
      assert.deepEqual(
        replies.map((r) => r.seq).sort((a, b) => a! - b!),
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
      assert.equal((await alice.api.messages(group.id)).last_seq, 30);
      session.close();
    } finally {
      await t.stop();
    }
  },
);

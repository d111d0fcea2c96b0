/**
 * Sealpost as an MLS Delivery Service without a browser (docs/mls.md): ten `ts-mls` members
 * (examples/chat/chat_client.ts on the SDK, each with its own WebSocket session and device-local
 * store) exchange 200 messages while the group goes through five membership changes — two of
 * them racing Commits of the same epoch, so one loses and is made again on the new state. In
 * the end every member is in the same epoch with the same epoch authenticator and member list,
 * and every member's transcript is exactly the messages sent while it was in the group.
 */

import assert from "node:assert/strict";
import { b64url } from "../../client/mod.ts";
import { ChatClient } from "../../examples/chat/chat_client.ts";
import { MemoryStore } from "../../examples/chat/store.ts";
import { startTestRelay, testBothDatabases } from "../helpers/relay.ts";

type Sent = { seq: number; account: string; text: string };

/** Seq windows in which a member belonged to the group: (joined, left). */
type Window = { after: number; before: number };

testBothDatabases(
  "10 ts-mls members: 200 messages, 5 membership changes, one epoch and transcript",
  async (db) => {
    const t = await startTestRelay({
      db,
      env: { SEALPOST_RATE_SEND: "off", SEALPOST_RATE_CLAIM: "off" },
      logLevel: "warn",
    });
    const errors: string[] = [];
    const members: ChatClient[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        members.push(
          await ChatClient.open({
            url: t.url,
            store: new MemoryStore(),
            name: `member ${i}`,
            keyPackages: 3,
            announce: false,
            onEvent: (event) => {
              if (event.type === "error") errors.push(`member ${i}: ${event.message}`);
            },
          }),
        );
      }
      await Promise.all(members.map((m) => m.session.ready()));
      const m = members;
      const windows = new Map<ChatClient, Window[]>();
      const inGroup = new Set<ChatClient>();
      const join = (member: ChatClient, seq: number) => {
        windows.set(member, [...windows.get(member) ?? [], { after: seq, before: Infinity }]);
        inGroup.add(member);
      };
      const leave = (member: ChatClient, seq: number) => {
        windows.get(member)!.at(-1)!.before = seq;
        inGroup.delete(member);
      };
      const sent: Sent[] = [];
      let lastSeq = 0;

      const group = await m[0].createGroup();
      join(m[0], 0);
      const formed = await m[0].invite(group, m.slice(1, 8).map((x) => x.account));
      assert.ok(formed);
      for (const x of m.slice(1, 8)) join(x, formed);
      lastSeq = formed;

      /**
       * Waits until every member in the group has processed everything sent so far and the
       * group is quiet: one epoch everywhere, no Commit in flight, every joiner merged by its
       * first Commit.
       */
      const settle = async () => {
        const deadline = Date.now() + 60_000;
        const quiet = () => {
          const groups = [...inGroup].map((x) => x.groups.get(group));
          if (groups.some((g) => !g?.state || g.removed || g.pending || g.seq < lastSeq)) {
            return false;
          }
          const epochs = new Set(groups.map((g) => g!.epoch));
          const unmerged = groups[0]!.state!.ratchetTree.some((n) =>
            n?.nodeType === "parent" && n.parent.unmergedLeaves.length > 0
          );
          return epochs.size === 1 && !unmerged;
        };
        while (!quiet()) {
          assert.ok(Date.now() < deadline, `the group did not settle: ${errors.join("; ")}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };

      /** 40 messages from random members of the group, all in flight at once. */
      let counter = 0;
      const burst = async () => {
        await settle();
        const senders = [...inGroup];
        const sends = Array.from({ length: 40 }, () => {
          const sender = senders[Math.floor(Math.random() * senders.length)];
          const text = `message ${++counter} from ${sender.name}: ${crypto.randomUUID()}`;
          return sender.sendText(group, text).then((seq) => {
            sent.push({ seq, account: sender.account, text });
            lastSeq = Math.max(lastSeq, seq);
          });
        });
        await Promise.all(sends);
        await settle();
      };
      const change = async (op: Promise<number | null>) => {
        const seq = await op;
        assert.ok(seq, "the membership change made a Commit");
        lastSeq = Math.max(lastSeq, seq);
        return seq;
      };

      await burst();
      // 1: a member other than the creator invites one account.
      join(m[8], await change(m[2].invite(group, m[8].account)));
      await burst();
      // 2 and 3: two removals made in the same epoch race; the later seq loses and rebases.
      const rebasesBefore = m.reduce((n, x) => n + x.rebases, 0);
      const [r4, r5] = await Promise.all([
        change(m[1].remove(group, m[4].account)),
        change(m[3].remove(group, m[5].account)),
      ]);
      leave(m[4], r4);
      leave(m[5], r5);
      // At least the loser of this race rebases; on a loaded machine a joiner's self-update can
      // race too. Correctness is what the end state checks: one epoch, one transcript.
      const rebased = m.reduce((n, x) => n + x.rebases, 0) - rebasesBefore;
      assert.ok(rebased >= 1, `a Commit that lost its race rebased (${rebased})`);
      await burst();
      // 4: one Commit adds a new account and brings a removed one back (fresh KeyPackage).
      const back = await change(m[6].invite(group, [m[9].account, m[4].account]));
      join(m[9], back);
      join(m[4], back);
      await burst();
      // 5: a member who joined late re-adds the other removed account.
      const lastChange = await change(m[8].invite(group, m[5].account));
      join(m[5], lastChange);
      await burst();
      await settle();

      assert.equal(sent.length, 200);
      assert.equal(inGroup.size, 10);
      assert.deepEqual(errors, []);

      // One epoch, one key schedule, one member list.
      const states = m.map((x) => x.groups.get(group)!.state!);
      const epochs = new Set(states.map((s) => s.groupContext.epoch));
      assert.equal(epochs.size, 1, `epochs ${[...epochs]}`);
      assert.equal(new Set(states.map((s) => b64url(s.keySchedule.epochAuthenticator))).size, 1);
      const roster = (i: number) =>
        m[i].groups.get(group)!.members().map((x) => x.device).sort().join();
      for (let i = 1; i < 10; i++) assert.equal(roster(i), roster(0));
      assert.equal(m[0].groups.get(group)!.members().length, 10);
      // The relay agrees on who the members are.
      const relayMembers = (await m[0].api.group(group)).members.map((x) => x.account).sort();
      assert.deepEqual(relayMembers, m.map((x) => x.account).sort());

      // Every transcript: exactly the messages sent while that member was in the group.
      const bySeq = [...sent].sort((a, b) => a.seq - b.seq);
      for (const member of m) {
        const mine = windows.get(member)!;
        const expected = bySeq.filter((s) => mine.some((w) => s.seq > w.after && s.seq < w.before))
          .map((s) => [s.seq, s.account, s.text]);
        const got = member.groups.get(group)!.transcript.map((e) => {
          assert.ok(e.verified, "the payload's account matches the relay's sender");
          return [e.seq, e.from.account, e.text];
        });
        assert.deepEqual(got, expected, `transcript of ${member.name}`);
      }
      // The ten who are in now read the last burst identically.
      const tail = (member: ChatClient) =>
        JSON.stringify(
          member.groups.get(group)!.transcript.filter((e) => e.seq > lastChange)
            .map((e) => [e.seq, e.from, e.text]),
        );
      assert.equal(JSON.parse(tail(m[0])).length, 40);
      for (const member of m) assert.equal(tail(member), tail(m[0]));
    } finally {
      for (const member of members) member.close();
      await t.stop();
    }
  },
);

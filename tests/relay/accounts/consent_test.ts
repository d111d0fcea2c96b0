/**
 * Tests of relay/accounts/consent.ts (issue 16, consent before exposure) through the HTTP API and
 * WebSocket: an invited account's device metadata and presence are hidden until it accepts and
 * shown after; only accepted groups count toward the group quota; pending invitations are
 * capped; inviting an unknown account answers exactly as inviting a known one. Runs on PGlite and
 * on real Postgres.
 */

import assert from "node:assert/strict";
import { generateKeyPair } from "../../../client/mod.ts";
import { cipher, newDevice } from "../../helpers/accounts.ts";
import { assertErrorBody, assertRejects, call, relaySuite } from "../../helpers/http.ts";
import { RawSocket } from "../../helpers/ws.ts";

/** Replaces account ids in a JSON value, so answers about different accounts can be compared. */
function withoutIds(value: unknown, ids: string[]): string {
  // Members added at the same millisecond are listed by account id: compare them by role.
  const sorted = Array.isArray(value) && Array.isArray(value[1])
    ? [value[0], [...value[1]].sort((a, b) => a.role.localeCompare(b.role))]
    : value;
  let text = JSON.stringify(sorted);
  for (const [i, id] of ids.entries()) text = text.replaceAll(id, `<account ${i}>`);
  return text;
}

relaySuite("consent before exposure", {
  overrides: { maxGroupsPerAccount: 3, maxPendingInvitations: 2 },
}, {
  "an invited account's device names, platforms and last_seen_at are hidden until it accepts":
    async (t) => {
      const alice = await newDevice(t.url, "alice laptop");
      const bob = await newDevice(t.url, "bob phone");
      const group = await alice.api.createGroup({ members: [bob.account] });
      const states = Object.fromEntries(group.members.map((m) => [m.account, m.state]));
      assert.deepEqual(states, { [alice.account]: "accepted", [bob.account]: "invited" });
      const hidden = (await alice.api.devices(bob.account)).devices;
      assert.equal(hidden.length, 1);
      assert.equal(hidden[0].id, bob.device);
      assert.equal(hidden[0].cert, bob.identity.cert, "encryption still gets the certificate");
      assert.equal(hidden[0].name, null);
      assert.equal(hidden[0].platform, null);
      assert.equal(hidden[0].last_seen_at, null);
      assert.equal(hidden[0].status, "active");
      // Bob sees the inviter in full: inviting exposes the inviter, not the invited.
      assert.equal((await bob.api.devices(alice.account)).devices[0].name, "alice laptop");

      const accepted = await bob.api.acceptGroup(group.id);
      assert.equal(accepted.members.find((m) => m.account === bob.account)?.state, "accepted");
      const shown = (await alice.api.devices(bob.account)).devices;
      assert.equal(shown[0].name, "bob phone");
      assert.equal(typeof shown[0].last_seen_at, "number");
      // Idempotent: accepting again, or as the owner who never was invited, answers the group.
      assert.deepEqual(await bob.api.acceptGroup(group.id), accepted);
      assert.deepEqual(await alice.api.acceptGroup(group.id), accepted);
      // A non-member gets 404, exactly as for a group that does not exist.
      const stranger = await newDevice(t.url);
      const a = await call(t.url, "POST", `/v1/groups/${group.id}/accept`, {
        token: stranger.token,
      });
      const b = await call(t.url, "POST", `/v1/groups/${"A".repeat(22)}/accept`, {
        token: stranger.token,
      });
      assertErrorBody(a, 404, "not_found");
      assert.deepEqual(a.body, b.body);
    },

  "an invited member's first send in the group accepts; leaving declines": async (t) => {
    const alice = await newDevice(t.url);
    const bob = await newDevice(t.url);
    const carol = await newDevice(t.url);
    const group = await alice.api.createGroup({ members: [bob.account, carol.account] });
    await bob.api.send(group.id, { body: cipher(), client_id: "first" });
    const after = await alice.api.group(group.id);
    assert.equal(after.members.find((m) => m.account === bob.account)?.state, "accepted");
    assert.equal(after.members.find((m) => m.account === carol.account)?.state, "invited");
    await carol.api.removeMember(group.id, carol.account);
    const declined = await alice.api.group(group.id);
    assert.equal(declined.members.some((m) => m.account === carol.account), false);
    await assertRejects(carol.api.acceptGroup(group.id), 404, "not_found");
  },

  "an invited member's first HTTP send accepts in its commit: the group is told once; past the quota it is 409":
    async (t) => {
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      const a = await RawSocket.authed(t.wsUrl, alice.token);
      try {
        a.send({ t: "sub", groups: [group.id] });
        await a.next((f) => f.t === "synced");
        await bob.api.send(group.id, { body: cipher(), client_id: "first" });
        await bob.api.send(group.id, { body: cipher(), client_id: "second" });
        assert.deepEqual(
          await a.next((f) => f.t === "group" && f.event === "member_accepted"),
          { t: "group", group: group.id, event: "member_accepted", account: bob.account },
        );
        await a.take(2, (f) => f.t === "msg");
        assert.ok(
          await a.none((f) => f.t === "group" && f.event === "member_accepted", 300),
          "announced once",
        );
        const states = (await alice.api.group(group.id)).members.map((m) => m.state);
        assert.deepEqual(states, ["accepted", "accepted"]);

        // Bob is in 1 accepted group; two more reach the quota (3 here).
        await bob.api.createGroup();
        await bob.api.createGroup();
        const full = await alice.api.createGroup({ members: [bob.account] });
        await assertRejects(
          bob.api.send(full.id, { body: cipher(), client_id: "q" }),
          409,
          "conflict",
        );
        const after = await alice.api.group(full.id);
        assert.equal(after.members.find((m) => m.account === bob.account)?.state, "invited");
        assert.equal(after.last_seq, 0, "the refused send was not stored");
      } finally {
        a.close();
      }
    },

  "an invited device's presence is not announced until it accepts (over the accept frame)": async (
    t,
  ) => {
    const alice = await newDevice(t.url);
    const bob = await newDevice(t.url);
    const dave = await newDevice(t.url);
    const group = await alice.api.createGroup({ members: [bob.account] });
    const a = await RawSocket.authed(t.wsUrl, alice.token);
    const b = await RawSocket.authed(t.wsUrl, bob.token);
    try {
      a.send({ t: "sub", groups: [group.id], presence: true });
      await a.next((f) => f.t === "synced");
      b.send({ t: "sub", groups: [group.id] });
      await b.next((f) => f.t === "synced");
      // A later membership event travels the same bus after Bob's connect: once Alice has it,
      // a presence event about Bob would have arrived before it.
      await alice.api.putMember(group.id, dave.account);
      await a.next((f) => f.t === "group" && f.account === dave.account);
      assert.equal(a.frames.filter((f) => f.t === "presence").length, 0, "no presence of Bob");
      // The invited member receives the group's events (and messages).
      await b.next((f) => f.t === "group" && f.account === dave.account);
      a.send({ t: "presence", group: group.id, ref: 1 });
      assert.deepEqual((await a.next((f) => f.t === "presence" && f.ref === 1)).online, [
        alice.device,
      ]);

      b.send({ t: "accept", group: group.id, ref: "ok" });
      assert.deepEqual(await b.next((f) => f.t === "accepted"), {
        t: "accepted",
        group: group.id,
        ref: "ok",
      });
      assert.deepEqual(
        await a.next((f) => f.t === "group" && f.event === "member_accepted"),
        { t: "group", group: group.id, event: "member_accepted", account: bob.account },
      );
      assert.deepEqual(await a.next((f) => f.t === "presence"), {
        t: "presence",
        group: group.id,
        device: bob.device,
        online: true,
      });
      a.send({ t: "presence", group: group.id, ref: 2 });
      const online = (await a.next((f) => f.t === "presence" && f.ref === 2)).online as string[];
      assert.deepEqual(online.sort(), [alice.device, bob.device].sort());
    } finally {
      a.close();
      b.close();
    }
  },

  "only accepted groups count toward max_groups_per_account; accepting past it is 409": async (
    t,
  ) => {
    const alice = await newDevice(t.url);
    const bob = await newDevice(t.url);
    await bob.api.createGroup();
    await bob.api.createGroup();
    const second = await bob.api.createGroup();
    // Bob is in 3 groups (the maximum here), yet may still be invited.
    const third = await alice.api.createGroup({ members: [bob.account] });
    await assertRejects(bob.api.acceptGroup(third.id), 409, "conflict");
    await assertRejects(bob.api.createGroup(), 409, "conflict");
    await bob.api.deleteGroup(second.id);
    const accepted = await bob.api.acceptGroup(third.id);
    assert.equal(accepted.members.find((m) => m.account === bob.account)?.state, "accepted");
  },

  "adding an unknown account answers exactly as adding a known one, up to the pending cap": async (
    t,
  ) => {
    const known = (await newDevice(t.url)).account;
    const unknown = (await generateKeyPair()).id;
    const answers: Record<string, string[]> = {};
    for (const account of [known, unknown]) {
      const owner = await newDevice(t.url);
      const out: string[] = [];
      const created = await call(t.url, "POST", "/v1/groups", {
        token: owner.token,
        body: { members: [account] },
      });
      out.push(withoutIds([created.status, created.body.members], [owner.account, account]));
      const other = (await owner.api.createGroup()).id;
      const added = await call(t.url, "PUT", `/v1/groups/${other}/members/${account}`, {
        token: owner.token,
        body: {},
      });
      out.push(withoutIds([added.status, added.body.members], [owner.account, account]));
      const devices = await call(t.url, "GET", `/v1/accounts/${account}/devices`, {
        token: owner.token,
      });
      out.push(String(devices.status));
      // A third pending invitation passes the cap (2 here), for both alike.
      const third = (await owner.api.createGroup()).id;
      const refused = await call(t.url, "PUT", `/v1/groups/${third}/members/${account}`, {
        token: owner.token,
        body: {},
      });
      assertErrorBody(refused, 409, "conflict");
      out.push(withoutIds(refused.body, [owner.account, account]));
      answers[account === known ? "known" : "unknown"] = out;
    }
    // added_at differs between calls; compare the rest.
    const strip = (list: string[]) => list.map((s) => s.replace(/"added_at":\d+/g, ""));
    assert.deepEqual(strip(answers.known), strip(answers.unknown));
  },
});

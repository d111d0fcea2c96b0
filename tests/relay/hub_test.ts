/**
 * Unit tests of relay/hub.ts on the in-process bus: the per-device connection limit, presence
 * announced on the bus, bus events turned into frames (committed messages after the replay,
 * ephemeral messages, membership, revocation) and the close codes of the error table. The
 * backlog is an in-memory reader over the test's messages (the database path of the replay is
 * covered by tests/relay/subscribe_test.ts).
 */

import assert from "node:assert/strict";
import type { ReplayReader } from "../../relay/backlog.ts";
import { ManualClock } from "../../relay/base/clock.ts";
import { silentLogger } from "../../relay/base/log.ts";
import type { BusEvent } from "../../relay/bus/bus.ts";
import { LocalBus } from "../../relay/bus/bus_local.ts";
import { Hub } from "../../relay/hub.ts";
import { messageJson, type StoredMessage } from "../../relay/messages.ts";
import { RecordingSocket } from "../helpers/frame_socket.ts";

function message(group: string, seq: number, device = "sender"): StoredMessage {
  return {
    group,
    seq,
    from: { account: "acct-s", device },
    created_at: 1,
    expires_at: null,
    body: "AAAA",
  };
}

function setup(stored: StoredMessage[] = []) {
  const bus = new LocalBus();
  const events: BusEvent[] = [];
  bus.subscribe((event) => events.push(event));
  const closes: number[] = [];
  const read: ReplayReader = (group, _device, after, limit) => {
    const inGroup = stored.filter((m) => m.group === group);
    const last = inGroup.reduce((max, m) => Math.max(max, m.seq), 0);
    const messages = inGroup.filter((m) => m.seq > after).slice(0, limit);
    return Promise.resolve({
      texts: messages.map(messageJson),
      last: messages.at(-1)?.seq ?? after,
      last_seq: last,
      has_more: messages.length === limit,
    });
  };
  const hub = new Hub({
    read,
    bus,
    clock: new ManualClock(1_000),
    log: silentLogger,
    instanceId: "here",
    maxConnectionsPerDevice: 2,
    maxBufferedBytes: 1_000,
    cursorsOf: () => Promise.resolve(new Map()),
    onClose: (code) => closes.push(code),
  });
  return { bus, hub, events, closes };
}

/** Waits until `check` passes (bounded: 2 s). */
async function eventually(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not reached in 2 s");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("Hub.add() refuses a device's connection past the limit and announces presence once", () => {
  const { hub, events } = setup();
  const a = hub.add("acct", "dev", new RecordingSocket(), ["g"]);
  const b = hub.add("acct", "dev", new RecordingSocket(), ["g"]);
  assert.ok(a && b);
  assert.equal(hub.add("acct", "dev", new RecordingSocket(), ["g"]), null);
  assert.equal(hub.connections, 2);
  assert.equal(hub.onlineDevices, 1);
  const presence = () => events.filter((e) => e.kind === "presence");
  assert.deepEqual(presence(), [
    { kind: "presence", device: "dev", account: "acct", groups: ["g"], online: true },
  ]);
  hub.remove(a);
  assert.equal(presence().length, 1, "still online through the second connection");
  hub.remove(b);
  assert.equal(hub.isOnline("dev"), false);
  assert.deepEqual(presence()[1], {
    kind: "presence",
    device: "dev",
    account: "acct",
    groups: ["g"],
    online: false,
  });
  hub.stop();
});

Deno.test("Hub announces presence only to accepted groups, and to one once it is accepted", () => {
  const { bus, hub, events } = setup();
  const conn = hub.add("acct", "dev", new RecordingSocket(), ["g", "h"], ["h"]);
  assert.ok(conn);
  const presence = () => events.filter((e) => e.kind === "presence");
  assert.deepEqual(presence(), [
    { kind: "presence", device: "dev", account: "acct", groups: ["g"], online: true },
  ]);
  bus.publish({
    kind: "membership",
    group: "h",
    event: "member_accepted",
    account: "acct",
    notify: ["acct"],
  });
  assert.deepEqual(presence()[1], {
    kind: "presence",
    device: "dev",
    account: "acct",
    groups: ["h"],
    online: true,
  });
  // After a bus gap, a fresh read marks a group invited again (a missed invitation).
  const memberships = Object.assign(new Map([["acct", ["g", "h", "i"]]]), {
    invited: new Set(["acct i"]),
  });
  hub.resync(memberships);
  hub.remove(conn);
  assert.deepEqual(presence()[2].kind === "presence" && presence()[2].groups, ["g", "h"]);
  hub.stop();
});

Deno.test("Hub with presence off publishes no presence", () => {
  const bus = new LocalBus();
  const events: BusEvent[] = [];
  bus.subscribe((event) => events.push(event));
  const hub = new Hub({
    read: () => Promise.resolve({ texts: [], last: 0, last_seq: 0, has_more: false }),
    bus,
    clock: new ManualClock(1_000),
    log: silentLogger,
    instanceId: "here",
    maxConnectionsPerDevice: 2,
    maxBufferedBytes: 1_000,
    cursorsOf: () => Promise.resolve(new Map()),
    presence: false,
  });
  const conn = hub.add("acct", "dev", new RecordingSocket(), ["g"]);
  hub.remove(conn!);
  assert.deepEqual(events.filter((e) => e.kind === "presence"), []);
  hub.stop();
});

Deno.test("Hub replays a subscription, says synced, then delivers committed messages live", async () => {
  const { bus, hub } = setup([message("g", 1), message("g", 2)]);
  const socket = new RecordingSocket();
  const conn = hub.add("acct", "dev", socket, ["g"])!;
  const refused = await hub.subscribe(conn, ["g", "other"], { g: 0 }, false);
  assert.deepEqual(refused, ["other"]);
  await eventually(() => socket.frames().some((f) => f.t === "synced"));
  bus.publish({ kind: "messages", group: "g", messages: [message("g", 3)] });
  await eventually(() => socket.frames().length === 4);
  assert.deepEqual(
    socket.frames().map((f) => f.t === "msg" ? `msg ${f.seq}` : `${f.t} ${f.seq}`),
    ["msg 1", "msg 2", "synced 2", "msg 3"],
  );
  assert.equal(hub.hasSubscribers("g"), true);
  hub.unsubscribe(conn, null);
  assert.equal(hub.hasSubscribers("g"), false);
  hub.stop();
});

Deno.test("Hub delivers ephemeral messages to subscribers except the sender, honouring to", async () => {
  const { hub } = setup();
  const sockets = ["s", "a", "b"].map(() => new RecordingSocket());
  const conns = ["s", "a", "b"].map((d, i) => hub.add(`acct-${d}`, d, sockets[i], ["g"])!);
  for (const conn of conns) await hub.subscribe(conn, ["g"], { g: 0 }, false);
  const from = { account: "acct-s", device: "s" };
  const reached = hub.deliverEphemeral({
    kind: "eph",
    origin: "here",
    group: "g",
    from,
    body: "AQ",
    to: ["b"],
  });
  assert.equal(reached, 1);
  const eph = (i: number) => sockets[i].frames().filter((f) => f.t === "eph");
  assert.deepEqual(eph(0), []);
  assert.deepEqual(eph(1), []);
  assert.deepEqual(eph(2), [{ t: "eph", group: "g", from, body: "AQ", to: ["b"] }]);
  hub.stop();
});

Deno.test("Hub follows membership events: member_added starts sub-all groups, removed stops them", async () => {
  const { bus, hub } = setup([message("new", 1)]);
  const socket = new RecordingSocket();
  const conn = hub.add("acct", "dev", socket, [])!;
  await hub.subscribe(conn, null, undefined, false);
  bus.publish({
    kind: "membership",
    group: "new",
    event: "member_added",
    account: "acct",
    notify: ["acct"],
  });
  assert.deepEqual(socket.frames()[0], {
    t: "group",
    group: "new",
    event: "member_added",
    account: "acct",
  });
  await eventually(() => socket.frames().some((f) => f.t === "synced"));
  assert.ok(socket.frames().some((f) => f.t === "msg" && f.group === "new"));
  assert.equal(hub.hasSubscribers("new"), true);
  bus.publish({
    kind: "membership",
    group: "new",
    event: "member_removed",
    account: "acct",
    notify: [],
  });
  assert.equal(conn.groups.has("new"), false);
  assert.equal(hub.hasSubscribers("new"), false);
  hub.stop();
});

Deno.test("Hub closes with the error table's codes: revoked 4003, too slow 4009, draining 1001", () => {
  const { bus, hub, closes } = setup();
  const revoked = new RecordingSocket();
  hub.add("acct", "gone", revoked, []);
  bus.publish({ kind: "revoked", device: "gone" });
  assert.equal(revoked.closed[0].code, 4003);

  const slow = new RecordingSocket();
  const conn = hub.add("acct", "slow", slow, [])!;
  slow.bufferedAmount = 2_000;
  assert.equal(conn.sendText("x"), false);
  assert.equal(slow.closed[0].code, 4009);
  assert.equal(hub.isOnline("slow"), false);

  const last = new RecordingSocket();
  hub.add("acct", "last", last, []);
  hub.closeAll("draining");
  assert.deepEqual(last.closed, [{ code: 1001, reason: "relay restarting" }]);
  assert.deepEqual(closes, [4003, 4009, 1001]);
  assert.equal(hub.connections, 0);
  hub.stop();
});

/**
 * relay/bus/bus_postgres.ts: the bus contract (bus_contract.ts) on two buses over one database,
 * then the Postgres-only cases — whole relays exchanging every event across instances, the
 * read-back after the listening connection is cut, and a bus alone leaving its commits
 * unannounced until another instance starts listening.
 */

import assert from "node:assert/strict";
import { cipher, newAccount, newDevice } from "../../helpers/accounts.ts";
import { sharedPostgres } from "../../helpers/postgres.ts";
import {
  dbUnavailable,
  openTestDatabase,
  startTestRelay,
  testBothDatabases,
} from "../../helpers/relay.ts";
import { RawSocket } from "../../helpers/ws.ts";
import { waitUntil } from "../../helpers/push.ts";
import { listenerUrl, PostgresBus, SOLO_CHECK_MS } from "../../../relay/bus/bus_postgres.ts";
import { silentLogger } from "../../../relay/base/log.ts";
import { systemClock } from "../../../relay/base/clock.ts";
import { TokenCache } from "../../../relay/accounts/token_cache.ts";
import { busContract } from "./bus_contract.ts";
import { HttpClient } from "../../../client/mod.ts";

/**
 * A fresh Postgres test database and an opener of buses on it: `soloCheckMs` for the solo tests,
 * `url` to change the URL the buses connect with.
 */
async function busDatabase(
  options: { soloCheckMs?: number; url?: (url: string) => string } = {},
) {
  const { handle, databaseUrl } = await openTestDatabase("postgres");
  const url = options.url ? options.url(databaseUrl!) : databaseUrl!;
  const open = (instanceId: string) =>
    PostgresBus.start({
      url,
      db: handle.db,
      instanceId,
      log: silentLogger,
      ...(options.soloCheckMs === undefined ? {} : { soloCheckMs: options.soloCheckMs }),
    });
  return { handle, databaseUrl: databaseUrl!, open };
}

busContract(
  "PostgresBus",
  async () => {
    const { handle, open } = await busDatabase();
    const here = await open("here");
    const there = await open("there");
    return {
      here,
      there,
      db: handle.db,
      close: async () => {
        await Promise.all([here.close(), there.close()]);
        await handle.close();
      },
    };
  },
  { ignore: dbUnavailable("postgres") !== null },
);

/** Two relay instances on one Postgres database, each with its own bus connection. */
async function twoInstances() {
  // Tokens remembered long, so a revocation that reaches B is seen only through the bus.
  const env = { SEALPOST_RATE_SEND: "off", SEALPOST_TOKEN_CACHE: "1h" };
  const a = await startTestRelay({ db: "postgres", env });
  const b = await startTestRelay({
    db: "postgres",
    databaseUrl: a.databaseUrl,
    env,
  });
  return { a, b, stop: async () => (await Promise.all([a.stop(), b.stop()]), undefined) };
}

testBothDatabases(
  "PostgresBus delivers messages, membership, presence, ephemeral and revocation across instances",
  async () => {
    const { a, b, stop } = await twoInstances();
    try {
      const alice = await newDevice(a.url);
      const [bob, bobLaptop] = await newAccount(a.url, 2);
      const group = await alice.api.createGroup({ members: [bob.account] });
      await bob.api.acceptGroup(group.id); // so its presence shows to alice
      const onB = await RawSocket.authed(b.wsUrl, bob.token);
      onB.send({ t: "sub", groups: null, presence: true });
      await onB.next((f) => f.t === "synced");
      const onA = await RawSocket.authed(a.wsUrl, alice.token);
      assert.deepEqual(await onB.next((f) => f.t === "presence"), {
        t: "presence",
        group: group.id,
        device: alice.device,
        online: true,
      });
      // messages sent on A arrive live on B, in order
      for (let i = 0; i < 20; i++) await alice.api.send(group.id, { body: cipher() });
      const got = await onB.take(20, (f) => f.t === "msg");
      assert.deepEqual(got.map((f) => f.seq), Array.from({ length: 20 }, (_, i) => i + 1));
      // ephemeral from A reaches B
      onA.send({ t: "send", ref: 1, group: group.id, body: "dHlwaW5n", ephemeral: true });
      assert.equal((await onB.next((f) => f.t === "eph")).body, "dHlwaW5n");
      // presence query on A sees bob's device connected to B (after the registry flush)
      await new Promise((r) => setTimeout(r, 400));
      onA.send({ t: "presence", group: group.id });
      const presence = await onA.next((f) => f.t === "presence" && Array.isArray(f.online));
      assert.deepEqual(new Set(presence.online as string[]), new Set([alice.device, bob.device]));
      // a group created on A is followed by B's sub-null socket
      const second = await alice.api.createGroup({ members: [bob.account] });
      assert.equal(
        (await onB.next((f) => f.t === "group" && f.group === second.id)).event,
        "member_added",
      );
      await alice.api.send(second.id, { body: cipher() });
      assert.equal((await onB.next((f) => f.t === "msg" && f.group === second.id)).seq, 1);
      // revocation on A closes the socket on B, and drops the token B remembers
      const onBHttp = new HttpClient(b.url);
      onBHttp.token = bob.token;
      await onBHttp.devices(bob.account);
      await bobLaptop.api.revokeDevice(bob.device);
      assert.equal((await onB.closed).code, 4003);
      await assert.rejects(onBHttp.devices(bob.account), { status: 403, code: "device_revoked" });
      onA.close();
    } finally {
      await stop();
    }
  },
  { only: ["postgres"] },
);

testBothDatabases(
  "PostgresBus reads back what was committed while its listening connection was down",
  async () => {
    const { a, b, stop } = await twoInstances();
    try {
      const alice = await newDevice(a.url);
      const bob = await newDevice(a.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      const onB = await RawSocket.authed(b.wsUrl, bob.token);
      onB.send({ t: "sub", groups: [group.id] });
      await onB.next((f) => f.t === "synced");
      const pg = await sharedPostgres();
      const dbName = new URL(a.databaseUrl!).pathname.slice(1);
      let sent = 0;
      const sending = (async () => {
        for (; sent < 60; sent++) {
          await alice.api.send(group.id, { body: cipher() });
          if (sent === 20) {
            // Kill every bus listener of this database while messages flow.
            await pg.psql(
              `select pg_terminate_backend(pid) from pg_stat_activity where application_name like 'sealpost-listen%' and datname = '${dbName}'`,
            );
          }
        }
      })();
      await sending;
      const got = await onB.take(60, (f) => f.t === "msg", 20_000);
      assert.deepEqual(got.map((f) => f.seq), Array.from({ length: 60 }, (_, i) => i + 1));
      assert.ok(await onB.none((f) => f.t === "msg", 300), "no duplicates");
      assert.ok(
        b.logs.some((line) => line.includes("bus listener reconnected")),
        "the listener really was cut and re-established",
      );
      onB.close();
    } finally {
      await stop();
    }
  },
  { only: ["postgres"] },
);

Deno.test({
  name:
    "PostgresBus alone leaves commits unannounced; a newcomer's hello turns announcing back on and, once the unannounced commits settled, makes every instance read back",
  ignore: dbUnavailable("postgres") !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { handle, open } = await busDatabase({ soloCheckMs: 50 });
    const here = await open("here");
    try {
      assert.equal(here.announcement().channel, "sealpost_bus", "a new bus announces at first");
      await waitUntil("alone, the bus goes solo", () => here.solo);
      const quiet = here.announcement();
      assert.equal(quiet.channel, null, "alone: no NOTIFY in the commit");
      // A newcomer starts listening while `quiet` is still in flight.
      const there = await open("there");
      try {
        let readBacks = 0;
        there.onGap(() => readBacks++);
        await waitUntil("the newcomer's hello turns announcing back on", () => !here.solo);
        assert.equal(here.announcement().channel, "sealpost_bus");
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(readBacks, 0, "no read-back while an unannounced commit is in flight");
        quiet.settled();
        await waitUntil("the read-back once it settled", () => readBacks === 1);
        // Both listen now: neither goes solo again, and nothing more is read back.
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(here.solo || there.solo, false);
        assert.equal(readBacks, 1);
      } finally {
        await there.close();
      }
      await waitUntil("alone again once the other listener is gone", () => here.solo);
    } finally {
      await here.close();
      await handle.close();
    }
  },
});

Deno.test({
  name:
    "PostgresBus: an application_name in the database URL does not rename the listeners, so two instances never both think themselves alone",
  ignore: dbUnavailable("postgres") !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Operators name their connections in the URL; postgres.js lets that override the option.
    const { handle, open } = await busDatabase({
      soloCheckMs: 50,
      url: (url) => url + (url.includes("?") ? "&" : "?") + "application_name=ops",
    });
    const here = await open("here");
    const there = await open("there");
    try {
      // Twenty checks each: with the listeners named "ops" both went solo at the first.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      assert.equal(here.solo || there.solo, false);
      assert.equal(here.announcement().channel, "sealpost_bus");
    } finally {
      await Promise.all([here.close(), there.close()]);
      await handle.close();
    }
  },
});

Deno.test("listenerUrl drops only application_name from the URL", () => {
  const base = "postgres://u:p%3Fw@h:5432/db";
  assert.equal(listenerUrl(base), base);
  assert.equal(listenerUrl(base + "?application_name=x"), base);
  assert.equal(
    listenerUrl(base + "?sslmode=require&application_name=x&connect_timeout=3"),
    base + "?sslmode=require&connect_timeout=3",
  );
});

testBothDatabases(
  "A relay that went solo delivers everything it commits while a second instance starts, in order, live on the newcomer",
  async () => {
    const a = await startTestRelay({ db: "postgres", env: { SEALPOST_RATE_SEND: "off" } });
    let b: Awaited<ReturnType<typeof startTestRelay>> | undefined;
    try {
      const alice = await newDevice(a.url);
      const bob = await newDevice(a.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      await waitUntil(
        "the only instance stops announcing",
        () => a.logs.some((line) => line.includes("commits go unannounced")),
        SOLO_CHECK_MS * 3,
      );
      // Sends keep committing on A while B starts and bob subscribes there.
      let sent = 0;
      const sending = (async () => {
        for (; sent < 80; sent++) {
          await alice.api.send(group.id, { body: cipher() });
          if (sent === 10) {
            b = await startTestRelay({
              db: "postgres",
              databaseUrl: a.databaseUrl,
              env: { SEALPOST_RATE_SEND: "off" },
            });
          }
        }
      })();
      await waitUntil("B started", () => b !== undefined, 20_000);
      const onB = await RawSocket.authed(b!.wsUrl, bob.token);
      onB.send({ t: "sub", groups: [group.id] });
      await sending;
      const got = await onB.take(80, (f) => f.t === "msg", 20_000);
      assert.deepEqual(got.map((f) => f.seq), Array.from({ length: 80 }, (_, i) => i + 1));
      assert.ok(await onB.none((f) => f.t === "msg", 300), "no duplicates");
      assert.ok(
        a.logs.some((line) => line.includes("announcing commits again")),
        "A heard the newcomer",
      );
      // And once both listen, a message sent on A arrives live on B.
      await alice.api.send(group.id, { body: cipher() });
      assert.equal((await onB.next((f) => f.t === "msg")).seq, 81);
      onB.close();
    } finally {
      await Promise.all([a.stop(), b?.stop()]);
    }
  },
  { only: ["postgres"] },
);

Deno.test({
  name:
    "PostgresBus: a listener that could not reconnect (database refusing connections) listens again once it can, and is deaf meanwhile",
  ignore: dbUnavailable("postgres") !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { handle, databaseUrl, open } = await busDatabase({ soloCheckMs: 100 });
    const pg = await sharedPostgres();
    const dbName = new URL(databaseUrl).pathname.slice(1);
    const here = await open("here");
    const there = await open("there");
    const heard: string[] = [];
    there.subscribe((event) => {
      if (event.kind === "revoked") heard.push(event.device);
    });
    // A token cache kept fresh by `there`'s events: not trusted while `there` is deaf.
    const tokens = new TokenCache({ bus: there, clock: systemClock, ttl: 60_000 });
    const token = { account: "a1", device: "d0", expiresAt: Date.now() + 600_000 };
    try {
      assert.equal(there.hearing, true);
      tokens.set("h1", token, tokens.begin());
      assert.deepEqual(tokens.get("h1"), token);
      // Cut every listener while no new connection to the database is allowed: postgres.js's
      // own reconnect fails at once. The pool's open connections keep working.
      await pg.psql(`alter database "${dbName}" allow_connections false`);
      await pg.psql(
        `select pg_terminate_backend(pid) from pg_stat_activity where application_name like 'sealpost-listen%' and datname = '${dbName}'`,
      );
      await waitUntil("the cut bus knows it is deaf", () => !there.hearing, 5_000);
      assert.equal(tokens.get("h1"), undefined, "a deaf bus's cache answers nothing");
      tokens.set("h2", token, tokens.begin());
      assert.equal(tokens.size, 1, "nor is it filled while deaf");
      await new Promise((resolve) => setTimeout(resolve, 500));
      await pg.psql(`alter database "${dbName}" allow_connections true`);
      await waitUntil("both listen again", () => there.hearing && here.hearing, 10_000);
      here.publish({ kind: "revoked", device: "d1" });
      await waitUntil("an event published afterwards is heard", () => heard.includes("d1"), 5_000);
    } finally {
      await pg.psql(`alter database "${dbName}" allow_connections true`).catch(() => {});
      await Promise.all([here.close(), there.close()]);
      await handle.close();
    }
  },
});

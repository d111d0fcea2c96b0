import assert from "node:assert/strict";
import { cipher, newDevice } from "../helpers/accounts.ts";
import { type PostgresCluster, startPostgres } from "../helpers/postgres.ts";
import { dbUnavailable, startTestRelay } from "../helpers/relay.ts";
import { type Replica, startReplica } from "../helpers/replica.ts";
import { RawSocket } from "../helpers/ws.ts";

const why = dbUnavailable("postgres");

Deno.test({
  name:
    "backlogReader() reads from a lagging replica only what it has, and falls back to the primary",
  ignore: why !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    let pg: PostgresCluster | null = null;
    let replica: Replica | null = null;
    let t: Awaited<ReturnType<typeof startTestRelay>> | null = null;
    try {
      pg = await startPostgres();
      const url = await pg.createDatabase();
      replica = await startReplica(pg);
      const name = new URL(url).pathname.slice(1);
      t = await startTestRelay({ db: "postgres", databaseUrl: url, replicaUrl: replica.url(name) });
      const alice = await newDevice(t.url);
      const bob = await newDevice(t.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      for (let i = 0; i < 5; i++) await alice.api.send(group.id, { body: cipher() });
      await replica.catchUp(pg);
      const fallbacksBefore = await fallbacks(t.url);
      assert.deepEqual((await bob.api.messages(group.id)).messages.map((m) => m.seq), [
        1,
        2,
        3,
        4,
        5,
      ]);
      assert.equal(
        await fallbacks(t.url),
        fallbacksBefore,
        "an up-to-date replica serves the read",
      );

      await replica.pause();
      for (let i = 0; i < 5; i++) await alice.api.send(group.id, { body: cipher() });
      // A reader that has seen seq 7 asks for more: the replica (at 5) is behind, the primary answers.
      const page = await bob.api.messages(group.id, 7);
      assert.deepEqual(page.messages.map((m) => m.seq), [8, 9, 10]);
      assert.equal(page.last_seq, 10);
      assert.ok(await fallbacks(t.url) > fallbacksBefore);

      // A subscriber replaying while live messages arrive gets everything despite the lag.
      const ws = await RawSocket.authed(t.wsUrl, bob.token);
      ws.send({ t: "sub", groups: [group.id], since: { [group.id]: 0 } });
      await alice.api.send(group.id, { body: cipher() });
      const got = await ws.take(11, (f) => f.t === "msg");
      assert.deepEqual(got.map((f) => f.seq), Array.from({ length: 11 }, (_, i) => i + 1));
      ws.close();
      await replica.resume();
    } finally {
      await t?.stop();
      await replica?.destroy();
      await pg?.destroy();
    }
  },
});

async function fallbacks(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("sealpost_replica_fallbacks_total "));
  return Number(line?.split(" ")[1] ?? 0);
}

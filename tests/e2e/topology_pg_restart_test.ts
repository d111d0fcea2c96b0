/**
 * A Postgres restart under a running two-instance deployment: `/readyz` turns 503 while the
 * database is gone and 200 when it is back; the relays recover without a restart and nothing
 * acknowledged is lost.
 */
import assert from "node:assert/strict";
import { type Message, SealpostError, Session } from "../../client/mod.ts";
import { cipher, newDevice } from "../helpers/accounts.ts";
import { type PostgresCluster, startPostgres } from "../helpers/postgres.ts";
import { startTopology, topologyUnavailable } from "../helpers/topology.ts";

const why = topologyUnavailable();
if (why) console.warn(`skipping topology tests: ${why}`);

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test({
  name:
    "topology: a Postgres restart turns readyz 503 then 200, relays recover, nothing acknowledged is lost",
  ignore: why !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    let pg: PostgresCluster | null = null;
    let topo: Awaited<ReturnType<typeof startTopology>> | null = null;
    let session: Session | null = null;
    try {
      pg = await startPostgres();
      topo = await startTopology(await pg.createDatabase(), 2);
      const alice = await newDevice(topo.url);
      const bob = await newDevice(topo.url);
      const group = await alice.api.createGroup({ members: [bob.account] });
      const got: number[] = [];
      session = new Session(bob.api, {
        url: topo.wsUrl,
        minBackoffMs: 100,
        maxBackoffMs: 500,
        onMessage: (m: Message) => void got.push(m.seq),
      });
      await session.ready();
      const acked: number[] = [];
      const sendWithRetry = async (i: number) => {
        for (let attempt = 0; attempt < 200; attempt++) {
          try {
            acked.push(
              (await alice.api.send(group.id, { body: cipher(), client_id: `m${i}` })).seq!,
            );
            return;
          } catch (error) {
            if (!(error instanceof SealpostError) || ![503, 502].includes(error.status)) {
              throw error;
            }
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        throw new Error("send never succeeded");
      };
      for (let i = 0; i < 10; i++) await sendWithRetry(i);

      await pg.stop("fast");
      await until(
        async () =>
          (await Promise.all(topo!.instances.map((i) => i.readyz()))).every((s) => s === 503),
        15_000,
        "every instance to report 503",
      );
      await pg.start();
      await until(
        async () =>
          (await Promise.all(topo!.instances.map((i) => i.readyz()))).every((s) => s === 200),
        30_000,
        "every instance to report 200 again",
      );
      for (let i = 10; i < 30; i++) await sendWithRetry(i);
      assert.deepEqual(acked, Array.from({ length: 30 }, (_, i) => i + 1));
      const deadline = Date.now() + 30_000;
      while (got.length < 30 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(got, Array.from({ length: 30 }, (_, i) => i + 1));
    } finally {
      session?.close();
      await topo?.stop();
      await pg?.destroy();
    }
  },
});

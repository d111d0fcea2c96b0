/**
 * Three relay processes on one Postgres behind haproxy: clients spread over instances keep the
 * rule of order and receive everything; `kill -9` of an instance mid-stream loses no acknowledged
 * message; the bus's listening connections killed by Postgres miss nothing; SIGTERM drains.
 */
import assert from "node:assert/strict";
import { HttpClient, type Message, Session } from "../../client/mod.ts";
import { cipher, newDevice, type TestDevice } from "../helpers/accounts.ts";
import { type PostgresCluster, startPostgres } from "../helpers/postgres.ts";
import { startTopology, topologyUnavailable } from "../helpers/topology.ts";
import { RawSocket } from "../helpers/ws.ts";

const why = topologyUnavailable();
if (why) console.warn(`skipping topology tests: ${why}`);

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function connectionsPerInstance(urls: string[]): Promise<number[]> {
  return await Promise.all(urls.map(async (url) => {
    try {
      const text = await (await fetch(`${url}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith("sealpost_websocket_connections "));
      return line ? Number(line.split(" ")[1]) : 0;
    } catch {
      return -1;
    }
  }));
}

Deno.test({
  name:
    "topology: clients over three instances keep order, survive kill -9 and a lost bus listener, drain on SIGTERM",
  ignore: why !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    let pg: PostgresCluster | null = null;
    let topo: Awaited<ReturnType<typeof startTopology>> | null = null;
    const sessions: Session[] = [];
    try {
      pg = await startPostgres();
      topo = await startTopology(await pg.createDatabase(), 3);
      const devices: TestDevice[] = [];
      for (let i = 0; i < 6; i++) devices.push(await newDevice(topo.url, `d${i}`));
      const group = await devices[0].api.createGroup({
        members: devices.slice(1).map((d) => d.account),
      });
      const received = devices.map(() => [] as number[]);
      for (const [i, d] of devices.entries()) {
        const session = new Session(d.api, {
          url: topo.wsUrl,
          groups: [group.id],
          minBackoffMs: 100,
          maxBackoffMs: 1000,
          onMessage: (m: Message) => void received[i].push(m.seq),
        });
        sessions.push(session);
        await session.ready();
      }
      const spread = await connectionsPerInstance(topo.instances.map((i) => i.url));
      assert.ok(
        spread.filter((n) => n > 0).length >= 2,
        `connections spread over instances: ${spread}`,
      );

      // Every device sends 30 messages, several in flight; instance 2 is killed midway.
      const acked: number[] = [];
      let killed = false;
      await Promise.all(sessions.map(async (session, i) => {
        for (let k = 0; k < 30; k += 5) {
          const replies = await Promise.all(
            Array.from(
              { length: 5 },
              (_, j) => session.send(group.id, { body: cipher(24), client_id: `d${i}-${k + j}` }),
            ),
          );
          for (const r of replies) acked.push(r.seq!);
          if (!killed && acked.length >= 80) {
            killed = true;
            await topo!.instances[1].kill();
          }
        }
      }));
      assert.ok(killed, "an instance was killed mid-stream");
      const total = acked.length;
      assert.equal(total, 180);
      assert.deepEqual(
        [...acked].sort((a, b) => a - b),
        Array.from({ length: total }, (_, i) => i + 1),
        "every ack has its own seq, no gaps",
      );
      await waitFor(
        () => received.every((r) => r.length >= total),
        30_000,
        "every device to receive every message",
      );
      for (const r of received) {
        assert.deepEqual(
          r,
          Array.from({ length: total }, (_, i) => i + 1),
          "in order, nothing lost",
        );
      }

      // The bus listeners of the live instances are killed by Postgres; nothing is missed.
      const listeners = await pg.psql(
        `select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name like 'sealpost-listen%'`,
      );
      assert.ok(Number(listeners.trim()) >= 1, `bus listeners killed: ${listeners.trim()}`);
      for (let k = 0; k < 20; k++) {
        acked.push((await sessions[k % 6].send(group.id, { body: cipher(8) })).seq!);
      }
      await waitFor(
        () => received.every((r) => r.length >= total + 20),
        30_000,
        "messages after the listener loss",
      );
      for (const r of received) {
        assert.deepEqual(
          r,
          Array.from({ length: total + 20 }, (_, i) => i + 1),
        );
      }

      // SIGTERM drains: a socket on that instance is closed with 1001 and the process exits 0.
      const third = topo.instances[2];
      const api = new HttpClient(third.url);
      const raw = await RawSocket.authed(
        third.url.replace("http", "ws") + "/v1/ws",
        devices[0].token,
      );
      void api;
      const code = await third.terminate();
      assert.equal((await raw.closed).code, 1001);
      assert.equal(code, 0);
    } finally {
      for (const s of sessions) s.close();
      await topo?.stop();
      await pg?.destroy();
    }
  },
});

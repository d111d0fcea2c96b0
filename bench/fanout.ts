/**
 * @module
 * Steady fan-out: `groups` groups of `size` one-device accounts, one SDK session per device,
 * every device sending (round-robin) so that the aggregate reaches the target rate. Each
 * message should reach all `size` member devices, the sender's own session included (that is
 * how the relay delivers: 6 frames per message in a group of 6). The same fleet is reused for
 * every rate, and for the bare-WebSocket broadcast with the same shape.
 */

import { type BenchGroup, createGroups, registerDevices } from "./fleet.ts";
import { type LoadClient, type LoadResult, LoadRun } from "./load.ts";
import { type MetricsDelta, metricsDelta, type RelayProcess } from "./relay_process.ts";
import { type AckMode, openSessions, type SessionSet } from "./sessions.ts";
import { sleep } from "./stats.ts";
import { loadAverage, type Usage, UsageMeter } from "./system.ts";

let nextId = 1;

/** A fleet ready to send: sessions, one load client per session. */
export type Fleet = {
  groups: BenchGroup[];
  clients: LoadClient[];
  sessions: SessionSet | null;
  registration_s: number;
  connect_s: number;
  /** The run receiving messages now. */
  current: LoadRun | null;
  close(): void;
};

/** Registers the devices, creates the groups and opens one session per device. */
export async function relayFleet(
  relay: RelayProcess,
  groupCount: number,
  size: number,
  ack: AckMode,
): Promise<Fleet> {
  const { devices, seconds } = await registerDevices(relay.url, groupCount * size);
  const groups = await createGroups(devices, size);
  const fleet: Fleet = {
    groups,
    clients: [],
    sessions: null,
    registration_s: Math.round(seconds * 10) / 10,
    connect_s: 0,
    current: null,
    close: () => fleet.sessions?.close(),
  };
  const members = groups.flatMap((g) => g.members.map((m) => ({ api: m.api, group: g.id })));
  const sessions = await openSessions(
    members,
    ack,
    (message) => fleet.current?.onReceive(message.body),
  );
  fleet.sessions = sessions;
  fleet.connect_s = Math.round(sessions.seconds * 10) / 10;
  fleet.clients = sessions.sessions.map((session, i) => {
    const group = members[i].group;
    return {
      send: (body: string, id: number) =>
        session.send(group, { body, client_id: String(id) }).then(() => {}),
    };
  });
  return fleet;
}

/** One rate's measurement. */
export type RateResult = {
  loadavg_before: number;
  load: LoadResult;
  usage: Usage;
  relay_metrics: MetricsDelta | null;
  reconnects: number;
};

/** Runs one rate on a fleet and measures the relay (or raw server) process meanwhile. */
export async function measureRate(
  fleet: Fleet,
  target: { pid: number; relay?: RelayProcess; postgresPid?: number },
  rate: number,
  durationS: number,
  recipients: number,
  bodyLength: number,
  stallS = 10,
): Promise<RateResult> {
  await sleep(1000);
  if (target.relay) await settle(target.relay);
  const loadavg = loadAverage()[0];
  const before = target.relay ? await target.relay.metrics() : null;
  const reconnectsBefore = fleet.sessions?.reconnects() ?? 0;
  const run = new LoadRun(nextId, rate, durationS, recipients, bodyLength);
  nextId += run.total;
  fleet.current = run;
  const meter = new UsageMeter(target.pid, target.postgresPid);
  let usage: Usage | undefined;
  const load = await run.run(fleet.clients, stallS, () => usage = meter.stop());
  fleet.current = null;
  const after = target.relay ? await target.relay.metrics() : null;
  return {
    loadavg_before: loadavg,
    load,
    usage: usage!,
    relay_metrics: before && after ? metricsDelta(before, after) : null,
    reconnects: (fleet.sessions?.reconnects() ?? 0) - reconnectsBefore,
  };
}

/** Waits (up to 60 s) until the relay has committed nothing new for a second: no backlog. */
async function settle(relay: RelayProcess): Promise<void> {
  const accepted = async () => (await relay.metrics()).get("sealpost_messages_accepted_total") ?? 0;
  let last = await accepted();
  for (let i = 0; i < 60; i++) {
    await sleep(1000);
    const now = await accepted();
    if (now === last) return;
    last = now;
  }
}

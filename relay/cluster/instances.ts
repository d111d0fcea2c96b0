/**
 * @module
 * The instance registry: every relay instance keeps a row with its id, region, version,
 * connection count and a heartbeat, and records which devices are connected to it. Other
 * instances use that for presence and for knowing whether a device is online anywhere (push
 * goes only to devices that are not). An instance whose heartbeat stops is considered gone after
 * {@link DEAD_AFTER_MS}; the leader removes its rows.
 */

import { sql } from "kysely";
import type { Clock } from "../base/clock.ts";
import type { Db } from "../store/database.ts";
import type { InstancesTable } from "../store/schema.ts";
import type { Logger } from "../base/log.ts";

/** How often an instance writes its heartbeat. */
export const HEARTBEAT_MS = 5_000;
/** An instance silent this long is considered gone. */
export const DEAD_AFTER_MS = 30_000;
/** How long a gone instance's row stays for the admin overview. */
const FORGET_AFTER_MS = 3_600_000;
/** Presence rows are written in batches at this interval. */
const FLUSH_MS = 200;

/** An instance's row in the registry, with whether it is alive. */
export type RegisteredInstance = InstancesTable & { alive: boolean };

/** Options of the registry. */
export type RegistryOptions = {
  db: Db;
  clock: Clock;
  log: Logger;
  id: string;
  region: string | null;
  version: string;
  connections: () => number;
  isLeader: () => boolean;
};

/** This instance's entry in the registry, and queries over all instances. */
export class InstanceRegistry {
  #changes = new Map<string, boolean>();
  #timers: ReturnType<typeof setInterval>[] = [];
  readonly startedAt: number;

  constructor(private readonly options: RegistryOptions) {
    this.startedAt = options.clock.now();
  }

  get id(): string {
    return this.options.id;
  }

  /** Registers this instance (clearing what a previous run under the same id left) and starts heartbeats. */
  async start(): Promise<void> {
    const { db } = this.options;
    await db.deleteFrom("online_devices").where("instance_id", "=", this.options.id).execute();
    await this.heartbeat();
    this.#timers.push(setInterval(() => {
      this.heartbeat().catch((error) => this.options.log.warn("heartbeat failed", { error }));
    }, HEARTBEAT_MS));
    this.#timers.push(setInterval(() => {
      this.flush().catch((error) => this.options.log.warn("presence flush failed", { error }));
    }, FLUSH_MS));
  }

  /** Writes this instance's row. */
  async heartbeat(): Promise<void> {
    const { db, clock } = this.options;
    const row = {
      id: this.options.id,
      region: this.options.region,
      version: this.options.version,
      started_at: this.startedAt,
      heartbeat_at: clock.now(),
      connections: this.options.connections(),
      leader: this.options.isLeader(),
    };
    await db.insertInto("instances").values(row).onConflict((oc) =>
      oc.column("id").doUpdateSet({
        region: row.region,
        version: row.version,
        started_at: row.started_at,
        heartbeat_at: row.heartbeat_at,
        connections: row.connections,
        leader: row.leader,
      })
    ).execute();
  }

  /** Notes that a device came online or went offline here (written within {@link FLUSH_MS}). */
  deviceOnline(device: string, online: boolean): void {
    this.#changes.set(device, online);
  }

  /** Writes pending presence changes. */
  async flush(): Promise<void> {
    if (this.#changes.size === 0) return;
    const changes = this.#changes;
    this.#changes = new Map();
    const on = [...changes].filter(([, v]) => v).map(([d]) => d);
    const off = [...changes].filter(([, v]) => !v).map(([d]) => d);
    const { db, clock, id } = this.options;
    try {
      if (off.length > 0) {
        await db.deleteFrom("online_devices").where("instance_id", "=", id)
          .where("device_id", "in", off).execute();
      }
      if (on.length > 0) {
        await db.insertInto("online_devices")
          .values(on.map((device_id) => ({ device_id, instance_id: id, since: clock.now() })))
          .onConflict((oc) => oc.columns(["device_id", "instance_id"]).doNothing()).execute();
      }
    } catch (error) {
      for (const [device, online] of changes) {
        if (!this.#changes.has(device)) this.#changes.set(device, online);
      }
      throw error;
    }
  }

  /** Devices of `group`'s members connected to other live instances. */
  async onlineElsewhere(group: string): Promise<string[]> {
    const { db, clock, id } = this.options;
    const rows = await sql<{ device_id: string }>`
      select distinct od.device_id from online_devices od
      join devices d on d.id = od.device_id
      join group_members gm on gm.account_id = d.account_id and gm.group_id = ${group}
        and gm.state = 'accepted'
      join instances i on i.id = od.instance_id
      where od.instance_id <> ${id} and i.heartbeat_at > ${clock.now() - DEAD_AFTER_MS}`
      .execute(db);
    return rows.rows.map((r) => r.device_id);
  }

  /** Which of `devices` are connected to any live instance (this one included, once flushed). */
  async onlineAnywhere(devices: string[]): Promise<Set<string>> {
    if (devices.length === 0) return new Set();
    const { db, clock } = this.options;
    const rows = await db.selectFrom("online_devices")
      .innerJoin("instances", "instances.id", "online_devices.instance_id")
      .select("online_devices.device_id")
      .where("online_devices.device_id", "in", devices)
      .where("instances.heartbeat_at", ">", clock.now() - DEAD_AFTER_MS)
      .execute();
    return new Set(rows.map((r) => r.device_id));
  }

  /** Every known instance, newest first. */
  async list(): Promise<RegisteredInstance[]> {
    const now = this.options.clock.now();
    const rows = await this.options.db.selectFrom("instances").selectAll()
      .orderBy("started_at", "desc").execute();
    return rows.map((r) => ({ ...r, alive: r.heartbeat_at > now - DEAD_AFTER_MS }));
  }

  /** Leader job: forgets gone instances' presence, old instance rows and old bus spills. */
  async prune(): Promise<void> {
    const { db, clock } = this.options;
    const now = clock.now();
    const dead = await db.selectFrom("instances").select("id")
      .where("heartbeat_at", "<=", now - DEAD_AFTER_MS).execute();
    if (dead.length > 0) {
      await db.deleteFrom("online_devices").where("instance_id", "in", dead.map((d) => d.id))
        .execute();
    }
    await db.deleteFrom("instances").where("heartbeat_at", "<=", now - FORGET_AFTER_MS).execute();
    await db.deleteFrom("bus_spill").where("created_at", "<=", Date.now() - 60_000).execute();
  }

  /** Stops heartbeats and removes this instance's presence (clean shutdown). */
  async stop(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    const { db, id } = this.options;
    try {
      await db.deleteFrom("online_devices").where("instance_id", "=", id).execute();
      await db.updateTable("instances").set({ heartbeat_at: 0, connections: 0, leader: false })
        .where("id", "=", id).execute();
    } catch (error) {
      this.options.log.warn("instance deregistration failed", { error });
    }
  }
}

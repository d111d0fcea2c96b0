/**
 * @module
 * The instance directory port: which relay instances are running, where, since when and with how
 * many connections, for the admin overview. Guarantee: `list()` includes this instance (marked
 * `self`) with its live connection count, even before its first heartbeat is stored.
 * {@link registryDirectory} reads the shared instance registry (every instance on one database);
 * {@link LocalInstances} knows only this instance (tests, or a relay without a registry).
 */

import type { Clock } from "../base/clock.ts";
import type { InstanceRegistry } from "./instances.ts";
import type { InstancesTable } from "../store/schema.ts";

/**
 * One running instance: its registry row (`heartbeat_at` is now for this instance) without the
 * leader flag, and `self`, true for the instance answering this request.
 */
export type InstanceInfo = Omit<InstancesTable, "leader"> & { self: boolean };

/** Lists running instances. */
export interface InstanceDirectory {
  list(): Promise<InstanceInfo[]>;
}

/** The directory of a single instance. */
export class LocalInstances implements InstanceDirectory {
  readonly startedAt: number;

  constructor(
    private readonly options: {
      id: string;
      region: string | null;
      version: string;
      clock: Clock;
      connections: () => number;
    },
  ) {
    this.startedAt = options.clock.now();
  }

  list(): Promise<InstanceInfo[]> {
    const { id, region, version, clock, connections } = this.options;
    return Promise.resolve([{
      id,
      region,
      version,
      started_at: this.startedAt,
      heartbeat_at: clock.now(),
      connections: connections(),
      self: true,
    }]);
  }
}

/**
 * The live instances of the shared registry, with this instance's numbers taken live (the
 * stored row lags by up to a heartbeat).
 */
export function registryDirectory(
  registry: InstanceRegistry,
  self: LocalInstances,
): InstanceDirectory {
  return {
    async list() {
      const [mine] = await self.list();
      const others = (await registry.list())
        .filter((i) => i.alive && i.id !== mine.id)
        .map((i) => ({
          id: i.id,
          region: i.region,
          version: i.version,
          started_at: i.started_at,
          heartbeat_at: i.heartbeat_at,
          connections: i.connections,
          self: false,
        }));
      return [mine, ...others];
    },
  };
}

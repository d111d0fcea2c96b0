/**
 * @module
 * The instance directory port: which relay instances are running, where, since when and with how
 * many connections, for the admin overview. Guarantee: `list()` includes this instance (marked
 * `self`) with its live connection count. {@link LocalInstances} knows only this instance (one
 * box); a directory over the shared database's instance registry serves many.
 */

import type { Clock } from "./clock.ts";

/** One running instance. */
export type InstanceInfo = {
  id: string;
  region: string | null;
  version: string;
  started_at: number;
  /** When the instance last reported (its own clock); equals now for this instance. */
  heartbeat_at: number;
  connections: number;
  /** True for the instance answering this request. */
  self: boolean;
};

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

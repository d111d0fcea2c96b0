/**
 * @module
 * What the dashboard receives from `createRelay` and what its handlers see in the context.
 */

import type { ApiEnv } from "../relay/api/context.ts";
import type { AdminSession } from "./auth.ts";
import type { Deps } from "../relay/deps.ts";
import type { InstanceDirectory } from "../relay/cluster/instance_directory.ts";
import type { MetricsHistory } from "./metrics_history.ts";

/** The live state of this instance the dashboard shows. */
export interface LiveView {
  /** Live authenticated WebSocket connections on this instance. */
  readonly connections: number;
  /** True when `device` has a live connection on this instance. */
  isOnline(device: string): boolean;
}

/** The dashboard's dependencies: the relay's services plus live views. */
export type AdminDeps = Deps & {
  instances: InstanceDirectory;
  history: MetricsHistory;
  live: LiveView;
  /** Uploaded blobs and their bytes, when the relay has a blob store. */
  blobUsage?: () => Promise<{ blobs: number; bytes: number }>;
};

/** The Hono environment of admin handlers. */
export type AdminEnv = {
  Variables: ApiEnv["Variables"] & { session: AdminSession; actor: string };
  Bindings: ApiEnv["Bindings"];
};

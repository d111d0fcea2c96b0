/**
 * @module
 * Every migration, listed statically so a compiled binary carries them. Append only: a released
 * migration never changes; the schema changes by adding `NNNN_name.ts` here.
 */

import type { Migration } from "kysely/migration";
import * as m0001 from "./0001_initial.ts";

/** All migrations by name, in order. */
export const MIGRATIONS: Record<string, Migration> = {
  "0001_initial": m0001,
};

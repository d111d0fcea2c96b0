/**
 * @module
 * Every migration, listed statically so a compiled binary carries them. Append only: a released
 * migration never changes; the schema changes by adding `NNNN_name.ts` here.
 */

import type { Migration } from "kysely/migration";
import * as m0001 from "./0001_initial.ts";
import * as m0002 from "./0002_blobs.ts";
import * as m0003 from "./0003_admin.ts";
import * as m0004 from "./0004_instances.ts";
import * as m0005 from "./0005_push.ts";
import * as m0006 from "./0006_key_packages.ts";
import * as m0007 from "./0007_commit_function.ts";
import * as m0008 from "./0008_invitations.ts";
import * as m0009 from "./0009_sealed_sends.ts";
import * as m0010 from "./0010_accept_in_commit.ts";

/** All migrations by name, in order. */
export const MIGRATIONS: Record<string, Migration> = {
  "0001_initial": m0001,
  "0002_blobs": m0002,
  "0003_admin": m0003,
  "0004_instances": m0004,
  "0005_push": m0005,
  "0006_key_packages": m0006,
  "0007_commit_function": m0007,
  "0008_invitations": m0008,
  "0009_sealed_sends": m0009,
  "0010_accept_in_commit": m0010,
};

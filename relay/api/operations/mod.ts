/**
 * @module
 * Every HTTP route of the relay as data: method, path, who may call it, the zod schema its
 * handler validates the body with (the same object, imported from `relay/protocol.ts`), the
 * answers it gives (schemas from `responses.ts`) and one worked example. `openapi.ts` turns this
 * table into the OpenAPI document; `tests/relay/api/openapi_test.ts` fails when a route of the
 * app is missing here or a row here has no route, and replays every example against a relay.
 * A new route is one new row, in the file of its area.
 */

import { DATA_OPERATIONS } from "./data.ts";
import { GROUP_OPERATIONS } from "./groups.ts";
import { SERVICE_OPERATIONS } from "./service.ts";
import type { Operation } from "./types.ts";

export type { Access, Answer, Operation, QueryParam } from "./types.ts";

/** The routes, in the order the example replay walks them (destructive calls last). */
export const OPERATIONS: Operation[] = [
  ...SERVICE_OPERATIONS,
  ...GROUP_OPERATIONS,
  ...DATA_OPERATIONS,
];

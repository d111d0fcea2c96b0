/**
 * relay/bus/bus_local.ts through the bus contract (bus_contract.ts), over PGlite for the
 * `announce` transaction: one process is the only instance, so both ends are the same bus.
 */

import { LocalBus } from "../../../relay/bus/bus_local.ts";
import { openTestDatabase } from "../../helpers/relay.ts";
import { busContract } from "./bus_contract.ts";

busContract("LocalBus", async () => {
  const { handle } = await openTestDatabase("pglite");
  const bus = new LocalBus();
  return {
    here: bus,
    there: bus,
    db: handle.db,
    close: async () => {
      await bus.close();
      await handle.close();
    },
  };
});

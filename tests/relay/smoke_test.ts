import assert from "node:assert/strict";
import { createDeviceIdentity, HttpClient } from "../../client/mod.ts";
import { startTestRelay, testBothDatabases } from "../helpers/relay.ts";

testBothDatabases("register() then list own devices", async (db) => {
  const t = await startTestRelay({ db });
  try {
    const api = new HttpClient(t.url);
    const me = await createDeviceIdentity();
    const reg = await api.register(me, { name: "laptop" });
    assert.equal(reg.status, 201);
    const { devices } = await api.devices(me.account);
    assert.equal(devices.length, 1);
    assert.equal(devices[0].status, "active");
  } finally {
    await t.stop();
  }
});

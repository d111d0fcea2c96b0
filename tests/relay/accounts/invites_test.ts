/**
 * Tests of relay/accounts/invites.ts and the registration modes (PROTOCOL.md "Authentication"):
 * `invite` mode needs a valid code for a new account, `closed` refuses every new device, and
 * both still let known devices in. Runs on PGlite and on real Postgres.
 */

import assert from "node:assert/strict";
import { createDeviceIdentity, generateKeyPair, HttpClient, sign } from "../../../client/mod.ts";
import { createInvite, listInvites, revokeInvite } from "../../../relay/accounts/invites.ts";
import {
  assertErrorBody,
  assertRejects,
  call,
  nonce,
  registerBody,
  registered,
  relaySuite,
} from "../../helpers/http.ts";

const INVITE_MODE = { env: { SEALPOST_REGISTRATION: "invite" } };

relaySuite("invite mode", INVITE_MODE, {
  "register() in invite mode answers 403 registration_closed without an invite and 201 with one":
    async (t) => {
      const info = await call(t.url, "GET", "/v1/info");
      assert.equal(info.body.registration, "invite");

      const me = await createDeviceIdentity();
      const api = new HttpClient(t.url);
      await assertRejects(api.register(me), 403, "registration_closed");

      const { code } = await createInvite(t.relay.deps.db, t.clock, { maxUses: 1 });
      const ok = await api.register(me, { invite: code });
      assert.equal(ok.status, 201);
      await api.devices(me.account);
    },

  "register() answers 403 forbidden for an unknown, used-up, expired or revoked invite": async (
    t,
  ) => {
    const deps = t.relay.deps;
    const tryCode = async (invite: string) =>
      await new HttpClient(t.url).register(await createDeviceIdentity(), { invite });

    await assertRejects(tryCode("no-such-code"), 403, "forbidden");

    const once = await createInvite(deps.db, t.clock, { maxUses: 1 });
    assert.equal((await tryCode(once.code)).status, 201);
    await assertRejects(tryCode(once.code), 403, "forbidden");

    const twice = await createInvite(deps.db, t.clock, { maxUses: 2 });
    assert.equal((await tryCode(twice.code)).status, 201);
    assert.equal((await tryCode(twice.code)).status, 201);
    await assertRejects(tryCode(twice.code), 403, "forbidden");

    const soon = await createInvite(deps.db, t.clock, { expiresAt: t.clock.now() + 60_000 });
    t.clock.advance(60_000);
    await assertRejects(tryCode(soon.code), 403, "forbidden");

    const revoked = await createInvite(deps.db, t.clock, { maxUses: 5 });
    assert.equal(await revokeInvite(deps.db, t.clock, revoked.id), true);
    await assertRejects(tryCode(revoked.code), 403, "forbidden");

    const byId = new Map((await listInvites(deps.db, t.clock)).map((i) => [i.id, i]));
    assert.equal(byId.get(once.id)?.status, "used_up");
    assert.equal(byId.get(once.id)?.uses, 1);
    assert.equal(byId.get(twice.id)?.uses, 2);
    assert.equal(byId.get(soon.id)?.status, "expired");
    assert.equal(byId.get(revoked.id)?.status, "revoked");
    assert.equal(byId.get(revoked.id)?.uses, 0);
  },

  "invites are stored only as hashes": async (t) => {
    const { id, code } = await createInvite(t.relay.deps.db, t.clock, { note: "for Ann" });
    const row = await t.relay.deps.db.selectFrom("invites").selectAll().where("id", "=", id)
      .executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes(code), "the code is not in the row");
    assert.equal(row.note, "for Ann");
  },

  "a registration that fails its signature check does not use up an invite": async (t) => {
    const { code } = await createInvite(t.relay.deps.db, t.clock, { maxUses: 1 });
    const me = await createDeviceIdentity();
    const forged = await registerBody(me, await nonce(t.url), {
      invite: code,
      sig: await sign(await generateKeyPair(), "sealpost:auth:v1:whatever"),
    });
    const refused = await call(t.url, "POST", "/v1/auth/register", { body: forged });
    assertErrorBody(refused, 401, "unauthenticated");
    const { status } = await registered(t, { invite: code });
    assert.equal(status, 201);
  },

  "concurrent registrations never use an invite more often than allowed": async (t) => {
    const { code, id } = await createInvite(t.relay.deps.db, t.clock, { maxUses: 2 });
    const results = await Promise.allSettled(
      Array.from(
        { length: 6 },
        async () =>
          await new HttpClient(t.url).register(await createDeviceIdentity(), { invite: code }),
      ),
    );
    const ok = results.filter((r) => r.status === "fulfilled");
    assert.equal(ok.length, 2);
    for (const r of results) {
      if (r.status === "rejected") assert.match(String(r.reason), /403 forbidden/);
    }
    const invite = (await listInvites(t.relay.deps.db, t.clock)).find((i) => i.id === id);
    assert.equal(invite?.uses, 2);
    assert.equal(invite?.status, "used_up");
  },

  "invite mode lets an already registered account add a device without an invite": async (t) => {
    const root = await generateKeyPair();
    const { code } = await createInvite(t.relay.deps.db, t.clock);
    const first = await registered(t, { account: root, invite: code });
    assert.equal(first.status, 201);
    const second = await registered(t, { account: root });
    assert.equal(second.status, 201);
    // Re-registering and logging in need no invite either.
    assert.equal((await second.api.register(second.me)).status, 200);
    await new HttpClient(t.url).login(first.me);
    const { devices } = await first.api.devices(root.id);
    assert.equal(devices.length, 2);
  },
});

relaySuite("closed mode", { env: { SEALPOST_REGISTRATION: "closed" } }, {
  // First: it checks the mode the relay starts in.
  "SEALPOST_REGISTRATION=closed closes registration from the start": async (t) => {
    assert.equal((await call(t.url, "GET", "/v1/info")).body.registration, "closed");
    await assertRejects(
      new HttpClient(t.url).register(await createDeviceIdentity()),
      403,
      "registration_closed",
    );
    // An admin opens it at run time; the stored setting wins over the environment.
    await t.relay.deps.settings.set("registration", "open", "test");
    const { status } = await registered(t);
    assert.equal(status, 201);
    const audit = await t.relay.deps.db.selectFrom("audit_log").selectAll().execute();
    assert.equal(audit.at(-1)?.action, "setting.registration");
    assert.deepEqual(JSON.parse(audit.at(-1)!.detail), { before: "closed", after: "open" });
  },

  "closed mode answers 403 registration_closed for any new device but lets known devices in":
    async (t) => {
      await t.relay.deps.settings.set("registration", "open", "test");
      const root = await generateKeyPair();
      const known = await registered(t, { account: root });
      await t.relay.deps.settings.set("registration", "closed", "test");
      assert.equal((await call(t.url, "GET", "/v1/info")).body.registration, "closed");

      const api = new HttpClient(t.url);
      await assertRejects(api.register(await createDeviceIdentity()), 403, "registration_closed");
      await assertRejects(
        api.register(await createDeviceIdentity(root)),
        403,
        "registration_closed",
      );
      // Even a valid invite does not open a closed relay.
      const { code } = await createInvite(t.relay.deps.db, t.clock);
      await assertRejects(
        api.register(await createDeviceIdentity(), { invite: code }),
        403,
        "registration_closed",
      );

      assert.equal((await known.api.register(known.me)).status, 200);
      await new HttpClient(t.url).login(known.me);
      const { devices } = await known.api.devices(root.id);
      assert.equal(devices.length, 1);
    },
});

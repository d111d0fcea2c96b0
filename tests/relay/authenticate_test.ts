/**
 * Tests of relay/authenticate.ts through the HTTP API (PROTOCOL.md "Authentication"): challenge,
 * register, login, bearer tokens, and every auth failure code, on PGlite and on real Postgres.
 */

import assert from "node:assert/strict";
import { createDeviceIdentity, generateKeyPair, HttpClient, sign } from "../../client/mod.ts";
import { randomId } from "../../relay/base/encoding.ts";
import { testBothDatabases } from "../helpers/relay.ts";
import {
  assertErrorBody,
  assertRejects,
  call,
  loginBody,
  nonce,
  registerBody,
  registered,
  relaySuite,
  withRelay,
} from "../helpers/http.ts";

const FIVE_MINUTES = 5 * 60_000;

relaySuite("authentication over HTTP", {}, {
  "challenge() issues a 32-byte nonce valid for five minutes": async (t) => {
    const response = await call(t.url, "POST", "/v1/auth/challenge");
    assert.equal(response.status, 200);
    assert.match(response.body.nonce, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(response.body.expires_at, t.clock.now() + FIVE_MINUTES);
    const again = await call(t.url, "POST", "/v1/auth/challenge");
    assert.notEqual(again.body.nonce, response.body.nonce);
  },

  "register() answers 201 for a new device and 200 with a new token when it registers again":
    async (t) => {
      const { me, api, status } = await registered(t, { name: "laptop", platform: "linux" });
      assert.equal(status, 201);
      const first = api.token!;
      assert.equal(api.tokenExpiresAt, t.clock.now() + t.config.tokenTtl);

      const again = await api.register(me);
      assert.equal(again.status, 200);
      assert.equal(again.account, me.account);
      assert.equal(again.device, me.device.id);
      assert.notEqual(again.token, first);

      // Both tokens work; there is still exactly one device.
      for (const token of [first, again.token]) {
        const listed = await call(t.url, "GET", `/v1/accounts/${me.account}/devices`, { token });
        assert.equal(listed.status, 200);
        assert.equal(listed.body.devices.length, 1);
        assert.equal(listed.body.devices[0].name, "laptop");
        assert.equal(listed.body.devices[0].platform, "linux");
        assert.equal(listed.body.devices[0].cert, me.cert);
      }
    },

  "register() accepts a device certified by a separate account root key": async (t) => {
    const root = await generateKeyPair();
    const phone = await registered(t, { account: root });
    const laptop = await registered(t, { account: root });
    assert.equal(phone.status, 201);
    assert.equal(laptop.status, 201);
    assert.equal(phone.me.account, root.id);
    const { devices } = await phone.api.devices(root.id);
    assert.deepEqual(
      devices.map((d) => d.id).sort(),
      [phone.me.device.id, laptop.me.device.id].sort(),
    );
  },

  "register() answers 401 unauthenticated for a bad cert or a bad signature": async (t) => {
    const me = await createDeviceIdentity(await generateKeyPair());
    const stranger = await generateKeyPair();

    const wrongSigner = await registerBody(me, await nonce(t.url), {
      cert: await sign(stranger, `sealpost:device:v1:${me.device.id}`),
    });
    assertErrorBody(
      await call(t.url, "POST", "/v1/auth/register", { body: wrongSigner }),
      401,
      "unauthenticated",
    );

    const wrongText = await registerBody(me, await nonce(t.url), {
      cert: await sign(await generateKeyPair(), "sealpost:device:v1:someone-else"),
    });
    assertErrorBody(
      await call(t.url, "POST", "/v1/auth/register", { body: wrongText }),
      401,
      "unauthenticated",
    );

    const n = await nonce(t.url);
    const badSig = await registerBody(me, n, {
      sig: await sign(stranger, `sealpost:auth:v1:${n}`),
    });
    assertErrorBody(
      await call(t.url, "POST", "/v1/auth/register", { body: badSig }),
      401,
      "unauthenticated",
    );

    const m = await nonce(t.url);
    const wrongPrefix = await registerBody(me, m, { sig: await sign(me.device, m) });
    assertErrorBody(
      await call(t.url, "POST", "/v1/auth/register", { body: wrongPrefix }),
      401,
      "unauthenticated",
    );

    // None of the failures created the device.
    await assertRejects(new HttpClient(t.url).login(me), 401, "unknown_device");
  },

  "register() and login() answer 401 unauthenticated for a reused, expired or never-issued nonce":
    async (t) => {
      const me = await createDeviceIdentity();
      const used = await nonce(t.url);
      const ok = await call(t.url, "POST", "/v1/auth/register", {
        body: await registerBody(me, used),
      });
      assert.equal(ok.status, 201);

      // Reused.
      assertErrorBody(
        await call(t.url, "POST", "/v1/auth/register", { body: await registerBody(me, used) }),
        401,
        "unauthenticated",
      );
      assertErrorBody(
        await call(t.url, "POST", "/v1/auth/login", { body: await loginBody(me, used) }),
        401,
        "unauthenticated",
      );

      // Never issued.
      const invented = randomId(32);
      assertErrorBody(
        await call(t.url, "POST", "/v1/auth/login", { body: await loginBody(me, invented) }),
        401,
        "unauthenticated",
      );
      assertErrorBody(
        await call(t.url, "POST", "/v1/auth/register", {
          body: await registerBody(me, invented),
        }),
        401,
        "unauthenticated",
      );

      // Expired: valid for five minutes, not a millisecond more.
      const [stale, staleToo, fresh] = [
        await nonce(t.url),
        await nonce(t.url),
        await nonce(t.url),
      ];
      t.clock.advance(FIVE_MINUTES - 1);
      const inTime = await call(t.url, "POST", "/v1/auth/login", {
        body: await loginBody(me, fresh),
      });
      assert.equal(inTime.status, 200);
      t.clock.advance(1);
      assertErrorBody(
        await call(t.url, "POST", "/v1/auth/login", { body: await loginBody(me, stale) }),
        401,
        "unauthenticated",
      );
      assertErrorBody(
        await call(t.url, "POST", "/v1/auth/register", { body: await registerBody(me, staleToo) }),
        401,
        "unauthenticated",
      );
    },

  "login() answers 200 with a working token for a known device": async (t) => {
    const { me } = await registered(t);
    const api = new HttpClient(t.url);
    const { token, expires_at } = await api.login(me);
    assert.equal(typeof token, "string");
    assert.equal(expires_at, t.clock.now() + t.config.tokenTtl);
    const { devices } = await api.devices(me.account);
    assert.equal(devices[0].id, me.device.id);
  },

  "login() answers 401 unknown_device for a device the relay does not know": async (t) => {
    const stranger = await createDeviceIdentity();
    await assertRejects(new HttpClient(t.url).login(stranger), 401, "unknown_device");
    // A bad signature is still 401 unauthenticated, whether or not the device is known.
    const n = await nonce(t.url);
    const body = { ...(await loginBody(stranger, n)), sig: await sign(stranger.device, "x") };
    assertErrorBody(
      await call(t.url, "POST", "/v1/auth/login", { body }),
      401,
      "unauthenticated",
    );
  },

  "register() answers 409 conflict for a device key of another account": async (t) => {
    const { me } = await registered(t, { account: await generateKeyPair() });
    const thief = await generateKeyPair();
    const n = await nonce(t.url);
    const body = await registerBody(me, n, {
      account: thief.id,
      cert: await sign(thief, `sealpost:device:v1:${me.device.id}`),
    });
    assertErrorBody(await call(t.url, "POST", "/v1/auth/register", { body }), 409, "conflict");
    // The device stays with its account.
    const api = new HttpClient(t.url);
    await api.login(me);
    const { devices } = await api.devices(me.account);
    assert.equal(devices.length, 1);
  },

  "register() of the same new device twice at once creates it once": async (t) => {
    const me = await createDeviceIdentity();
    const results = await Promise.all(
      [0, 1, 2, 3].map(() => new HttpClient(t.url).register(me)),
    );
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 200, 200, 201]);
    const api = new HttpClient(t.url);
    await api.login(me);
    const { devices } = await api.devices(me.account);
    assert.equal(devices.length, 1);
  },

  "a revoked device gets 403 device_revoked from register, login and its bearer token": async (
    t,
  ) => {
    const root = await generateKeyPair();
    const phone = await registered(t, { account: root });
    const lost = await registered(t, { account: root });
    await lost.api.devices(root.id); // its token is now remembered (relay/accounts/token_cache.ts)
    await phone.api.revokeDevice(lost.me.device.id);

    await assertRejects(lost.api.devices(root.id), 403, "device_revoked");
    await assertRejects(new HttpClient(t.url).login(lost.me), 403, "device_revoked");
    await assertRejects(new HttpClient(t.url).register(lost.me), 403, "device_revoked");
    const raw = await call(t.url, "GET", `/v1/accounts/${root.id}/devices`, {
      token: lost.api.token!,
    });
    assertErrorBody(raw, 403, "device_revoked");
  },

  "a request without a bearer token, or with a garbage one, answers 401 unauthenticated": async (
    t,
  ) => {
    const { me, api } = await registered(t);
    const path = `/v1/accounts/${me.account}/devices`;
    const variants: Record<string, string>[] = [
      {},
      { authorization: "" },
      { authorization: "Bearer" },
      { authorization: "Bearer " },
      { authorization: "Bearer garbage" },
      { authorization: `Bearer ${randomId(32)}` },
      { authorization: `Basic ${btoa("user:pass")}` },
      { authorization: `Token ${api.token}` },
      { authorization: `Bearer ${api.token}x` },
      { authorization: `Bearer ${api.token} extra` },
      { authorization: "Bearer \u00e9\u00e9\u00e9" },
    ];
    for (const headers of variants) {
      const response = await call(t.url, "GET", path, { headers });
      assertErrorBody(response, 401, "unauthenticated");
    }
    // The same header, well formed, works.
    const ok = await call(t.url, "GET", path, {
      headers: { authorization: `bearer ${api.token}` },
    });
    assert.equal(ok.status, 200);
  },

  "a token of a device deleted by cleanup answers 401 unknown_device and the device may register again":
    async (t) => {
      const root = await generateKeyPair();
      const keeper = await registered(t, { account: root });
      const gone = await registered(t, { account: root });
      // What inactivity cleanup does: keep tombstones of the device's tokens, delete the device.
      const store = t.relay.deps.db;
      const tokens = await store.selectFrom("tokens").select(["hash", "device_id", "expires_at"])
        .where("device_id", "=", gone.me.device.id).execute();
      assert.equal(tokens.length, 1);
      await store.insertInto("token_tombstones").values(tokens).execute();
      await store.deleteFrom("devices").where("id", "=", gone.me.device.id).execute();
      t.relay.deps.bus.publish({ kind: "revoked", device: gone.me.device.id });

      await assertRejects(gone.api.devices(root.id), 401, "unknown_device");
      await assertRejects(new HttpClient(t.url).login(gone.me), 401, "unknown_device");
      const { devices } = await keeper.api.devices(root.id);
      assert.deepEqual(devices.map((d) => d.id), [keeper.me.device.id]);

      const again = await gone.api.register(gone.me);
      assert.equal(again.status, 201);
      await gone.api.devices(root.id);
    },
});

testBothDatabases(
  "a token answers 401 unauthenticated once SEALPOST_TOKEN_TTL has passed",
  (db) =>
    withRelay(db, { env: { SEALPOST_TOKEN_TTL: "1h" } }, async (t) => {
      const { me, api } = await registered(t);
      assert.equal(api.tokenExpiresAt, t.clock.now() + 3_600_000);
      t.clock.advance(3_600_000 - 1);
      await api.devices(me.account);
      t.clock.advance(1);
      const expired = await assertRejects(api.devices(me.account), 401, "unauthenticated");
      assert.match(expired.message, /expired/);
      // Logging in again gives a fresh token.
      await api.login(me);
      await api.devices(me.account);
    }),
);

testBothDatabases(
  "a token is remembered for SEALPOST_TOKEN_CACHE (no lookup), never past its expiry",
  (db) =>
    withRelay(db, { env: { SEALPOST_TOKEN_TTL: "1h", SEALPOST_TOKEN_CACHE: "2h" } }, async (t) => {
      const { me, api } = await registered(t);
      await api.devices(me.account);
      // Deleted by hand in SQL: the remembered token still answers, so it was not looked up.
      await t.relay.deps.db.deleteFrom("tokens").where("device_id", "=", me.device.id).execute();
      await api.devices(me.account);
      t.clock.advance(3_600_000 - 1);
      await api.devices(me.account);
      t.clock.advance(1);
      await assertRejects(api.devices(me.account), 401, "unauthenticated");
    }),
);

testBothDatabases(
  "with SEALPOST_TOKEN_CACHE=0s a token deleted by hand answers 401 at once",
  (db) =>
    withRelay(db, { env: { SEALPOST_TOKEN_CACHE: "0s" } }, async (t) => {
      const { me, api } = await registered(t);
      await api.devices(me.account);
      await t.relay.deps.db.deleteFrom("tokens").where("device_id", "=", me.device.id).execute();
      await assertRejects(api.devices(me.account), 401, "unauthenticated");
    }),
);

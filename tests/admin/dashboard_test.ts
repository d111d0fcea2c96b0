/**
 * @module
 * End-to-end tests of the admin dashboard in headless Chromium against a running relay: login,
 * overview numbers against state created through the API (and their htmx refresh), revoking a
 * device (its WebSocket closes 4003), invites and registration modes, retention seen by the API,
 * CSRF, and screenshots of each page in `tests/artifacts/`.
 */

import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { createDeviceIdentity, HttpClient, SealpostError } from "../../client/mod.ts";
import { newAccount, newDevice } from "../helpers/accounts.ts";
import { startTestRelay, type TestRelay } from "../helpers/relay.ts";
import { RawSocket } from "../helpers/ws.ts";
import { artifact, browserUnavailable, launchBrowser } from "./browser.ts";

const PASSWORD = "correct horse battery staple";

async function stat(page: Page, name: string): Promise<string> {
  return (await page.locator(`[data-stat="${name}"] dd`).textContent())?.trim() ?? "";
}

async function logIn(page: Page, relay: TestRelay): Promise<void> {
  await page.goto(`${relay.url}/admin`);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(`${relay.url}/admin`);
}

const why = browserUnavailable();
if (why) console.warn(`skipping the admin dashboard browser tests: ${why}`);

Deno.test({
  name: "admin dashboard drives the relay end to end in Chromium",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const relay = await startTestRelay({
      env: { SEALPOST_ADMIN_PASSWORD: PASSWORD, SEALPOST_REGION: "test-region" },
      logLevel: "info",
    });
    const browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const sockets: RawSocket[] = [];
    try {
      await t.step("a wrong password is refused, the right one logs in", async () => {
        const response = await page.goto(`${relay.url}/admin/devices`);
        assert.equal(new URL(page.url()).pathname, "/admin/login", "sent to the login page");
        assert.equal(response?.status(), 200);
        await page.getByLabel("Password").fill("not the password");
        await page.getByRole("button", { name: "Log in" }).click();
        await page.getByText("Wrong password.").waitFor();
        assert.equal(new URL(page.url()).pathname, "/admin/login");
        await page.screenshot({ path: await artifact("admin-login-refused.png") });
        await page.getByLabel("Password").fill(PASSWORD);
        await page.getByRole("button", { name: "Log in" }).click();
        await page.waitForURL(`${relay.url}/admin/devices`);
        const cookies = await context.cookies();
        const session = cookies.find((c) => c.name === "sealpost_admin");
        assert.ok(session?.httpOnly, "the session cookie is HttpOnly");
        assert.equal(session?.sameSite, "Strict");
      });

      // State created through the API.
      const [phone, laptop] = await newAccount(relay.url, 2);
      const solo = await newDevice(relay.url, "solo");
      const g1 = await phone.api.createGroup({ members: [solo.account] });
      await solo.api.createGroup();
      await phone.api.send(g1.id, { body: "AAAA", client_id: "m1" });
      const live = await RawSocket.authed(relay.wsUrl, laptop.token);
      sockets.push(live);

      await t.step("the overview shows what the API created and refreshes itself", async () => {
        await page.goto(`${relay.url}/admin`);
        assert.equal(await stat(page, "devices_active"), "3");
        assert.equal(await stat(page, "accounts"), "2");
        assert.equal(await stat(page, "groups"), "2");
        assert.equal(await stat(page, "connections"), "1");
        assert.equal(await stat(page, "devices_revoked"), "0");
        assert.match(await stat(page, "database_bytes"), /MiB|KiB/);
        const instance = page.locator("[data-instance]");
        assert.equal(await instance.count(), 1);
        assert.match((await instance.textContent()) ?? "", /test-region/);
        assert.equal(await page.locator("figure.chart svg polyline").count(), 2);
        await page.screenshot({ path: await artifact("admin-overview.png"), fullPage: true });
        // A new group appears without a reload: htmx refreshes the numbers every 5 s.
        await laptop.api.createGroup();
        await page.locator('[data-stat="groups"] dd', { hasText: "3" }).waitFor({
          timeout: 12_000,
        });
      });

      await t.step("revoking a device closes its WebSocket with 4003", async () => {
        await page.goto(`${relay.url}/admin/devices`);
        assert.equal(await page.locator("tr[data-device]").count(), 3);
        await page.screenshot({ path: await artifact("admin-devices.png"), fullPage: true });
        await page.getByLabel("Device, account or name").fill(laptop.device.slice(0, 10));
        await page.locator("tr[data-device]").first().waitFor();
        await page.waitForFunction(() => document.querySelectorAll("tr[data-device]").length === 1);
        assert.equal(
          await page.locator("tr[data-device]").getAttribute("data-device"),
          laptop.device,
        );
        await page.locator(`tr[data-device="${laptop.device}"] a`).first().click();
        await page.waitForURL(/\/admin\/devices\/[^/]+$/);
        await page.getByText("connected now").waitFor();
        await page.screenshot({ path: await artifact("admin-device.png"), fullPage: true });
        await page.getByRole("link", { name: "Revoke this device…" }).click();
        await page.getByRole("button", { name: "Revoke" }).click();
        await page.getByText("Device revoked").waitFor();
        const closed = await Promise.race([
          live.closed,
          new Promise<null>((r) => setTimeout(() => r(null), 5000)),
        ]);
        assert.equal(closed?.code, 4003, "the revoked device's socket closed with 4003");
        await assert.rejects(
          () => laptop.api.groups(),
          (e: unknown) => e instanceof SealpostError && e.code === "device_revoked",
        );
        await page.goto(`${relay.url}/admin/devices?status=revoked`);
        assert.equal(await page.locator("tr[data-device]").count(), 1);
      });

      await t.step("an invite made in the dashboard registers a device", async () => {
        await page.goto(`${relay.url}/admin/invites`);
        await page.getByRole("radio", { name: /invite — new accounts/ }).check();
        await page.getByRole("button", { name: "Save mode" }).click();
        await page.getByText("Registration mode saved.").waitFor();
        assert.equal((await new HttpClient(relay.url).info()).registration, "invite");
        const stranger = await createDeviceIdentity();
        await assert.rejects(
          () => new HttpClient(relay.url).register(stranger),
          (e: unknown) => e instanceof SealpostError && e.status === 403,
        );

        await page.getByLabel("Uses").fill("1");
        await page.getByLabel("Expires after").fill("7d");
        await page.getByLabel("Note").fill("for the e2e test");
        await page.getByRole("button", { name: "Create invite" }).click();
        const code = (await page.locator("[data-invite-code]").textContent())?.trim() ?? "";
        assert.match(code, /^[A-Za-z0-9_-]{20,}$/);
        assert.equal(await page.locator(".qr svg").count(), 1, "a QR code is shown");
        const link = await page.getByRole("link", { name: /\/join\?invite=/ }).getAttribute("href");
        assert.ok(link?.endsWith(`/join?invite=${code}`));
        await page.screenshot({ path: await artifact("admin-invite.png"), fullPage: true });

        const joined = await new HttpClient(relay.url).register(stranger, { invite: code });
        assert.equal(joined.status, 201);
        await page.goto(`${relay.url}/admin/invites`);
        assert.match(
          (await page.locator("tr[data-invite]").first().textContent()) ?? "",
          /1 \/ 1.*used up/s,
        );
      });

      await t.step("closing registration refuses new devices", async () => {
        await page.goto(`${relay.url}/admin/settings`);
        await page.getByLabel("Mode").selectOption("closed");
        await page.getByRole("button", { name: "Save settings" }).click();
        await page.getByText("Settings saved.").waitFor();
        const refused = await new HttpClient(relay.url).register(await createDeviceIdentity())
          .then(() => null, (e) => e);
        assert.ok(refused instanceof SealpostError);
        assert.equal(refused.status, 403);
        assert.equal(refused.code, "registration_closed");
      });

      await t.step("retention changed in the dashboard is what the API uses", async () => {
        await page.goto(`${relay.url}/admin/settings`);
        await page.getByLabel("Default retention of new groups").fill("7d");
        await page.getByLabel("Send rate per device").fill("50/min");
        await page.getByRole("button", { name: "Save settings" }).click();
        await page.getByText("Settings saved.").waitFor();
        await page.screenshot({ path: await artifact("admin-settings.png"), fullPage: true });
        const info = await new HttpClient(relay.url).info();
        assert.equal(info.limits.default_retention_s, 7 * 86_400);
        assert.deepEqual(info.limits.rate_send, { count: 50, per_s: 60 });
        const group = await phone.api.createGroup();
        assert.equal(group.retention_s, 7 * 86_400);

        // One group's retention, on its page.
        await page.goto(`${relay.url}/admin/groups/${g1.id}`);
        assert.equal(await page.locator('[data-stat="messages"]').textContent(), "1");
        await page.getByLabel("New retention").fill("2d");
        await page.getByRole("button", { name: "Change retention" }).click();
        await page.getByText("Retention changed.").waitFor();
        assert.equal((await phone.api.group(g1.id)).retention_s, 2 * 86_400);

        await page.goto(`${relay.url}/admin/audit`);
        const rows = await page.locator("tr[data-audit]").allTextContents();
        assert.ok(
          rows.some((r) => /setting\.retention_s.*2592000.*604800/s.test(r)),
          rows.join("\n"),
        );
        assert.ok(rows.some((r) => /setting\.registration.*invite.*closed/s.test(r)));
        assert.ok(rows.some((r) => /device\.revoke/.test(r)));
        await page.screenshot({ path: await artifact("admin-audit.png"), fullPage: true });
      });

      await t.step("a group is deleted after confirmation", async () => {
        await page.goto(`${relay.url}/admin/groups/${g1.id}`);
        await page.getByRole("link", { name: "Delete this group…" }).click();
        await page.getByRole("button", { name: "Delete group" }).click();
        await page.getByText("Group deleted.").waitFor();
        await assert.rejects(
          () => phone.api.group(g1.id),
          (e: unknown) => e instanceof SealpostError && e.status === 404,
        );
      });

      await t.step("a POST without the CSRF token is refused", async () => {
        const before = (await new HttpClient(relay.url).info()).registration;
        const response = await page.request.post(`${relay.url}/admin/settings`, {
          form: { registration: "open" },
          maxRedirects: 0,
        });
        assert.equal(response.status(), 403);
        assert.equal((await new HttpClient(relay.url).info()).registration, before);
      });

      await t.step(
        "every control is labelled and the first Tab reaches the skip link",
        async () => {
          for (const path of ["", "/devices", "/groups", "/invites", "/settings", "/audit"]) {
            await page.goto(`${relay.url}/admin${path}`);
            const unlabelled = await page.evaluate(() =>
              [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
                .filter((el) => (el as HTMLInputElement).labels?.length === 0)
                .map((el) => el.outerHTML)
            );
            assert.deepEqual(unlabelled, [], `/admin${path} has labels for every control`);
          }
          await page.keyboard.press("Tab");
          assert.equal(
            await page.evaluate(() => document.activeElement?.textContent),
            "Skip to content",
          );
        },
      );

      await t.step("pages fit a phone screen", async () => {
        const phoneContext = await browser.newContext({
          viewport: { width: 390, height: 844 },
          deviceScaleFactor: 2,
          isMobile: true,
        });
        const small = await phoneContext.newPage();
        await logIn(small, relay);
        const overflow = await small.evaluate(() =>
          document.documentElement.scrollWidth - document.documentElement.clientWidth
        );
        assert.ok(overflow <= 1, `no sideways scrolling (overflow ${overflow}px)`);
        await small.screenshot({
          path: await artifact("admin-overview-phone.png"),
          fullPage: true,
        });
        await small.getByRole("button", { name: "Log out" }).click();
        await small.waitForURL(`${relay.url}/admin/login`);
        await phoneContext.close();
      });
    } finally {
      for (const socket of sockets) socket.close();
      await browser.dispose();
      await relay.stop();
    }
  },
});

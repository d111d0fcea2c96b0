/**
 * Tests of admin/components/format.ts's clientText and its use: a device name with U+202E (and
 * other bidi or invisible controls) shows in the dashboard as a visible `[U+202E]`, never raw.
 */

import assert from "node:assert/strict";
import { clientText } from "../../admin/components/format.ts";
import { createDeviceIdentity, HttpClient } from "../../client/mod.ts";
import { startTestRelay } from "../helpers/relay.ts";

Deno.test("clientText() shows bidi, zero-width and control characters as visible escapes", () => {
  assert.equal(clientText("phone\u202Egnp.exe"), "phone[U+202E]gnp.exe");
  assert.equal(
    clientText("a\u2066b\u2069c\u200Bd\u0007e\u0085"),
    "a[U+2066]b[U+2069]c[U+200B]d[U+0007]e[U+0085]",
  );
  assert.equal(clientText("Ünïcødé 电话 📱"), "Ünïcødé 电话 📱");
  assert.equal(clientText("👩\u200D💻"), "👩\u200D💻", "the joiner inside emoji stays");
});

Deno.test({
  name: "a device name with U+202E is neutralised on the admin's device pages",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const password = "correct horse battery staple";
    const relay = await startTestRelay({ env: { SEALPOST_ADMIN_PASSWORD: password } });
    try {
      const identity = await createDeviceIdentity();
      await new HttpClient(relay.url).register(identity, {
        name: "invoice\u202Efdp.exe",
        platform: "web\u2067x",
      });
      const jar: string[] = [];
      const get = async (path: string, init: RequestInit = {}) => {
        const headers = new Headers(init.headers);
        if (jar.length) headers.set("cookie", jar.join("; "));
        const r = await fetch(`${relay.url}${path}`, { ...init, headers, redirect: "manual" });
        for (const line of r.headers.getSetCookie()) jar.push(line.split(";")[0]);
        return r;
      };
      const csrf =
        /name="_csrf" value="([^"]+)"/.exec(await (await get("/admin/login")).text())![1];
      const login = await get("/admin/login", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ _csrf: csrf, password, next: "/admin" }),
      });
      assert.equal(login.status, 303);
      for (const path of ["/admin/devices", `/admin/devices/${identity.device.id}`]) {
        const html = await (await get(path)).text();
        assert.ok(html.includes("invoice[U+202E]fdp.exe"), `${path} shows the escape`);
        // A form's value attribute keeps the exact text (the platform filter must match it);
        // it is never displayed.
        const shown = html.replace(/value="[^"]*"/g, "");
        const raw = /.{0,60}[\u202A-\u202E\u2066-\u2069].{0,60}/.exec(shown);
        assert.equal(raw, null, `${path} has no raw bidi control: ${JSON.stringify(raw?.[0])}`);
      }
    } finally {
      await relay.stop();
    }
  },
});

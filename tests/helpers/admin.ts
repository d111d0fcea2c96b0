/**
 * @module
 * The admin dashboard as a test sees it over HTTP: log in with the password the relay was
 * started with (`SEALPOST_ADMIN_PASSWORD`) and read the overview fragment.
 */

import assert from "node:assert/strict";

/** The admin password the tests start relays with. */
export const ADMIN_PASSWORD = "correct horse battery staple";

/** The admin overview fragment, after logging in with `password`. */
export async function overviewHtml(url: string, password = ADMIN_PASSWORD): Promise<string> {
  const login = await fetch(`${url}/admin/login`);
  const pre = login.headers.getSetCookie()[0].split(";")[0];
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await login.text())![1];
  const session = await fetch(`${url}/admin/login`, {
    method: "POST",
    redirect: "manual",
    headers: { cookie: pre, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ _csrf: csrf, password }),
  });
  await session.body?.cancel();
  const cookie = session.headers.getSetCookie()[0].split(";")[0];
  const page = await fetch(`${url}/admin/partials/overview`, {
    headers: { cookie, "hx-request": "true" },
  });
  assert.equal(page.status, 200);
  return await page.text();
}

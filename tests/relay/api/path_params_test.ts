/**
 * Every path parameter is validated (zod) before it reaches a query: ids with a NUL, a wrong
 * length or odd characters answer `404 not_found` (the admin's pages their 404), never `500` —
 * `DELETE /v1/groups/G/members/a%00b` was a 500. PGlite and Postgres.
 */

import assert from "node:assert/strict";
import { call, registered, relaySuite } from "../../helpers/http.ts";

const BAD = ["a%00b", "%00", "x".repeat(300), "..%2F..", "%E2%80%AE"];

relaySuite("path parameters", { env: { SEALPOST_ADMIN_PASSWORD: "correct horse battery" } }, {
  "malformed ids in /v1 paths answer 404, never 500": async (t) => {
    const { api, me } = await registered(t);
    const group = (await api.createGroup()).id;
    const token = api.token!;
    for (const bad of BAD) {
      const routes: [string, string, unknown?][] = [
        ["DELETE", `/v1/groups/${group}/members/${bad}`],
        ["PUT", `/v1/groups/${group}/members/${bad}`, {}],
        ["GET", `/v1/groups/${bad}`],
        ["DELETE", `/v1/groups/${bad}/members/${me.account}`],
        ["GET", `/v1/groups/${bad}/messages`],
        ["POST", `/v1/groups/${bad}/messages`, { body: "AAAA" }],
        ["GET", `/v1/accounts/${bad}/devices`],
        ["POST", `/v1/accounts/${bad}/keys/claim`, { kind: "mls" }],
        ["DELETE", `/v1/devices/${bad}`],
        ["GET", `/v1/blobs/${bad}`],
        ["GET", `/v1/blobs/${bad}/data?exp=1&sig=x`],
      ];
      for (const [method, path, body] of routes) {
        const answer = await call(t.url, method, path, { token, body });
        assert.equal(answer.status, 404, `${method} ${path} answered ${answer.status}`);
        assert.equal(answer.body.error.code, "not_found", `${method} ${path}`);
      }
    }
  },

  "malformed ids in admin paths answer the page's 404, never 500": async (t) => {
    const jar = new Map<string, string>();
    const fetchAdmin = async (path: string, init: RequestInit = {}) => {
      const headers = new Headers(init.headers);
      headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
      const response = await fetch(`${t.url}${path}`, { ...init, headers, redirect: "manual" });
      for (const line of response.headers.getSetCookie()) {
        const [name, value] = line.split(";")[0].split("=");
        jar.set(name, value);
      }
      return response;
    };
    const loginPage = await (await fetchAdmin("/admin/login")).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(loginPage)![1];
    const login = await fetchAdmin("/admin/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ _csrf: csrf, password: "correct horse battery", next: "/admin" }),
    });
    assert.equal(login.status, 303);
    const overview = await (await fetchAdmin("/admin")).text();
    const sessionCsrf = /name="_csrf" value="([^"]+)"/.exec(overview)![1];
    for (const bad of BAD) {
      for (
        const path of [`/admin/devices/${bad}`, `/admin/groups/${bad}`, `/admin/accounts/${bad}`]
      ) {
        const answer = await fetchAdmin(path);
        await answer.body?.cancel();
        assert.equal(answer.status, 404, `GET ${path} answered ${answer.status}`);
      }
      for (const path of [`/admin/devices/${bad}/revoke`, `/admin/invites/${bad}/revoke`]) {
        const answer = await fetchAdmin(path, {
          method: "POST",
          headers: { "x-csrf-token": sessionCsrf },
        });
        await answer.body?.cancel();
        assert.equal(answer.status, 404, `POST ${path} answered ${answer.status}`);
      }
    }
  },
});

import assert from "node:assert/strict";
import { HttpClient, SealpostError } from "../../client/mod.ts";

Deno.test("HttpClient turns a proxy's non-JSON error page into a SealpostError with the status's code", async () => {
  // What haproxy or nginx answers while no relay behind it is up: HTML, not the relay's JSON.
  const proxy = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) =>
      new URL(req.url).pathname === "/v1/info"
        ? new Response("<html><body><h1>503 Service Unavailable</h1></body></html>", {
          status: 503,
          headers: { "content-type": "text/html", "retry-after": "2" },
        })
        : new Response("<html>bad gateway</html>", { status: 502 }),
  );
  try {
    const api = new HttpClient(`http://127.0.0.1:${proxy.addr.port}`);
    const error = await api.info().catch((e) => e);
    assert.ok(error instanceof SealpostError, String(error));
    assert.equal(error.status, 503);
    assert.equal(error.code, "unavailable");
    assert.equal(error.retryAfterMs, 2000);
    const other = await api.groups().catch((e) => e);
    assert.ok(other instanceof SealpostError && other.status === 502, String(other));
    assert.equal(other.code, "unavailable");
  } finally {
    await proxy.shutdown();
  }
});

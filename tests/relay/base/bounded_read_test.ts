/**
 * Tests of relay/base/bounded_read.ts, alone and where it matters: a UnifiedPush endpoint on a
 * server the device controls answers with an endless error body, and the relay reads only the
 * first 64 KiB of it (a 300 MiB reply used to be read whole).
 */

import assert from "node:assert/strict";
import { OUTBOUND_BODY_BYTES, readCapped } from "../../../relay/base/bounded_read.ts";
import { AddressGuard } from "../../../relay/push/address_guard.ts";
import { postPushMessage } from "../../../relay/push/webpush.ts";
import { testVapidSigner } from "../../helpers/push.ts";

/** A loopback server answering `status` with up to `total` bytes, counting what it produced. */
function hugeServer(status: number, total: number) {
  let produced = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    const chunk = new Uint8Array(64 * 1024).fill(0x78);
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (produced >= total) return controller.close();
        produced += chunk.length;
        controller.enqueue(chunk);
      },
    });
    return new Response(body, { status });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/up/1`,
    produced: () => produced,
    stop: () => server.shutdown(),
  };
}

Deno.test("readCapped() reads at most its cap of an endless body and drops the rest", async () => {
  const server = hugeServer(200, 300 * 1024 * 1024);
  try {
    const text = await readCapped(await fetch(server.url));
    assert.equal(text.length, OUTBOUND_BODY_BYTES);
    const small = await readCapped(await fetch(server.url), 10);
    assert.equal(small, "xxxxxxxxxx");
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(server.produced() < 32 * 1024 * 1024, `the server produced ${server.produced()}`);
  } finally {
    await server.stop();
  }
});

Deno.test("a push endpoint's 300 MiB error body is read only up to the cap", async () => {
  const server = hugeServer(400, 300 * 1024 * 1024);
  try {
    const vapid = await testVapidSigner();
    const outcome = await postPushMessage(
      { vapid, guard: new AddressGuard({ allowPrivate: true }) },
      server.url,
      null,
      {},
    );
    assert.equal(outcome.result, "failed");
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(server.produced() < 32 * 1024 * 1024, `the server produced ${server.produced()}`);
  } finally {
    await server.stop();
  }
});

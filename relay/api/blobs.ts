/**
 * @module
 * Routes of PROTOCOL.md "Blobs": declare a blob (`POST /v1/blobs`), fetch it (`GET /v1/blobs/:id`
 * → `302` to a short-lived signed URL), and, for the filesystem store, the relay's own signed
 * upload and download URLs (`PUT`/`GET /v1/blobs/:id/data?exp=&sig=`), which carry no bearer
 * token: the signature is the permission. Bodies stream through; none is held whole in memory,
 * and an upload longer than the blob's declared size is refused `413 too_large` — from its
 * `Content-Length` before reading, or the moment the streamed bytes pass the size.
 */

import { Hono } from "hono";
import type { BlobPolicy } from "../blobs/policy.ts";
import { blobId, CreateBlobBody } from "../protocol.ts";
import { type ApiEnv, type Auth, pathParam, readBody } from "./context.ts";

/** The blob routes (mounted under `/v1`). */
export function blobRoutes(blobs: BlobPolicy, auth: Auth): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post("/blobs", auth, async (c) => {
    const body = await readBody(c, CreateBlobBody);
    return c.json(await blobs.create(c.get("principal"), body), 201);
  });

  app.get("/blobs/:id", auth, async (c) => {
    const url = await blobs.downloadUrl(c.get("principal"), pathParam(c, "id", blobId, "blob"));
    return c.body(null, 302, { location: url, "cache-control": "no-store" });
  });

  if (blobs.servesLocally) {
    app.put("/blobs/:id/data", async (c) => {
      const { exp = "", sig = "" } = c.req.query();
      const length = c.req.header("content-length");
      const declared = length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
      await blobs.receive(pathParam(c, "id", blobId, "blob"), exp, sig, c.req.raw.body, declared);
      return c.body(null, 204);
    });
    app.get("/blobs/:id/data", async (c) => {
      const { exp = "", sig = "" } = c.req.query();
      const { stream, size } = await blobs.open(pathParam(c, "id", blobId, "blob"), exp, sig);
      return c.body(stream, 200, {
        "content-type": "application/octet-stream",
        "content-length": String(size),
        "cache-control": "private, max-age=300",
      });
    });
  }
  return app;
}

/**
 * @module
 * Picks the blob store from the configuration: files under `$SEALPOST_DATA_DIR/blobs` (`fs`,
 * the default) or an S3-compatible bucket (`s3`). The one place that chooses an implementation.
 */

import type { Config } from "../config/config.ts";
import { FsBlobStore } from "./fs.ts";
import type { BlobStore } from "./mod.ts";
import { S3BlobStore } from "./s3.ts";

/** Builds the configured blob store; connects nowhere until used. */
export function openBlobStore(config: Config): BlobStore {
  if (config.blobStore === "s3") {
    return new S3BlobStore({
      endpoint: config.s3Endpoint,
      region: config.s3Region,
      accessKeyId: config.s3AccessKeyId!,
      secretAccessKey: config.s3SecretAccessKey!,
      bucket: config.s3Bucket!,
      pathStyle: config.s3PathStyle,
      publicEndpoint: config.s3PublicUrl,
    });
  }
  return new FsBlobStore(`${config.dataDir}/blobs`, config.publicUrl);
}

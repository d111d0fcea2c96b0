/**
 * @module
 * A real, signature-checking S3 server for tests: single-node Ceph radosgw from Debian
 * (`apt-get install -y ceph-mon ceph-osd radosgw`), started by `ceph_rgw.sh` beside this file in
 * about 15 s, once per test module, and stopped when the module unloads. Outside CI the tests
 * that need it skip, with the reason printed, when Ceph is not installed; under `CI=true` they
 * fail instead. (npm `s3rver` accepts any signature, so it cannot prove our signing.)
 */

import { AwsClient } from "aws4fetch";
import { freePort } from "./postgres.ts";

/** A running radosgw with one bucket, in the variables Sealpost reads. */
export type S3Server = {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  /** The settings a relay takes to use this bucket. */
  env: Record<string, string>;
  /** A client signing with the server's credentials (for checks behind the relay's back). */
  client: AwsClient;
};

const BINARIES = ["ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph-authtool"];

function onPath(bin: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      Deno.statSync(`${dir}/${bin}`);
      return true;
    } catch { /* keep looking */ }
  }
  return false;
}

/** Why S3 tests cannot run here (null when they can); under `CI=true` a reason is an error. */
export function s3Unavailable(): string | null {
  const missing = BINARIES.filter((b) => !onPath(b));
  const why = missing.length
    ? `Ceph radosgw is not installed (missing ${
      missing.join(", ")
    }; apt-get install -y ceph-mon ceph-osd radosgw)`
    : null;
  if (why && Deno.env.get("CI") === "true") {
    throw new Error(`CI=true but S3 tests cannot run: ${why}`);
  }
  return why;
}

function portIsFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/** Three consecutive free ports: S3 and the monitor's two. */
function freePortTriple(): number {
  for (let i = 0; i < 50; i++) {
    const port = freePort();
    if (port < 65000 && portIsFree(port + 1) && portIsFree(port + 2)) return port;
  }
  throw new Error("no three consecutive free ports for radosgw");
}

const SCRIPT = new URL("./ceph_rgw.sh", import.meta.url).pathname;

async function startRadosgw(): Promise<S3Server> {
  const dir = await Deno.makeTempDir({ prefix: "sealpost-rgw-" });
  const port = freePortTriple();
  const started = await new Deno.Command("bash", {
    args: [SCRIPT, "start", dir, String(port)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!started.success) {
    stopSync(dir);
    const err = new TextDecoder().decode(started.stderr);
    throw new Error(`radosgw did not start: ${err.trim().split("\n").slice(-5).join(" / ")}`);
  }
  globalThis.addEventListener("unload", () => stopSync(dir));
  const vars = Object.fromEntries(
    [...new TextDecoder().decode(started.stdout).matchAll(/^export (\w+)=(.*)$/gm)]
      .map((m) => [m[1], m[2]]),
  );
  const bucket = "sealpost-test";
  const client = new AwsClient({
    accessKeyId: vars.AWS_ACCESS_KEY_ID,
    secretAccessKey: vars.AWS_SECRET_ACCESS_KEY,
    service: "s3",
    region: vars.AWS_REGION,
    retries: 0,
  });
  // The bucket is made by a signed request, like any S3 client would.
  const made = await client.fetch(`${vars.AWS_ENDPOINT_URL_S3}/${bucket}`, { method: "PUT" });
  await made.body?.cancel();
  if (!made.ok) throw new Error(`creating the test bucket answered ${made.status}`);
  const env = {
    SEALPOST_BLOB_STORE: "s3",
    AWS_ENDPOINT_URL_S3: vars.AWS_ENDPOINT_URL_S3,
    AWS_REGION: vars.AWS_REGION,
    AWS_ACCESS_KEY_ID: vars.AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: vars.AWS_SECRET_ACCESS_KEY,
    BUCKET_NAME: bucket,
    SEALPOST_S3_PATH_STYLE: "true",
  };
  return {
    endpoint: vars.AWS_ENDPOINT_URL_S3,
    region: vars.AWS_REGION,
    accessKeyId: vars.AWS_ACCESS_KEY_ID,
    secretAccessKey: vars.AWS_SECRET_ACCESS_KEY,
    bucket,
    env,
    client,
  };
}

/** Kills the daemons by the pids the script wrote, waits briefly, and removes the files. */
function stopSync(dir: string): void {
  for (const name of ["rgw", "osd", "mon"]) {
    try {
      const pid = Number(Deno.readTextFileSync(`${dir}/${name}.pid`).trim());
      if (pid > 0) Deno.kill(pid, "SIGKILL");
    } catch { /* not started or gone */ }
  }
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* best effort */ }
}

let shared: Promise<S3Server> | null = null;

/** The module's radosgw, started on first use (about 15 s) and stopped at unload. */
export function sharedS3(): Promise<S3Server> {
  shared ??= startRadosgw();
  return shared;
}

/**
 * Tests of the Docker Compose files (docker-compose.yml, deploy/compose.*.yml) and .env.example.
 * Docker does not run on the test machines, so the files are checked the way Compose reads
 * them: YAML parsed by npm `yaml`, `${VAR}` interpolation as the Compose specification defines
 * it (`:-`, `-`, `:?`, `?`, `$$`), the result validated against the Compose specification's JSON
 * Schema (tests/deploy/compose-spec.json, from compose-spec/compose-spec at commit a08f8d5,
 * Apache-2.0), and the relay's environment fed to the relay's real configuration reader.
 * What cannot be checked here: that the images start (SeaweedFS, Caddy, Traefik), which
 * docs/deploy-homelab.md says.
 */

import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { Ajv } from "ajv";
import { loadConfig } from "../../relay/config/config.ts";
import { ROOT } from "../helpers/cli.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

/** Reads a `.env` file as Compose does: `NAME=value` lines, `#` comments, no expansion. */
function readDotEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]] = match[2];
  }
  return env;
}

/** Compose interpolation of one string; throws like Compose for a missing required variable. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^}$]|\$\{[^}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, name?: string, op?: string, arg?: string, bare?: string) => {
      if (whole === "$$") return "$";
      if (bare) return env[bare] ?? "";
      const value = env[name!];
      const empty = value === undefined || (op?.startsWith(":") && value === "");
      if (op === ":-" || op === "-") return empty ? interpolate(arg ?? "", env) : value!;
      if (op === ":?" || op === "?") {
        if (empty) throw new Error(`required variable ${name} is missing a value: ${arg}`);
        return value!;
      }
      return value ?? "";
    },
  );
}

function interpolateTree(node: Json, env: Record<string, string>): Json {
  if (typeof node === "string") return interpolate(node, env);
  if (Array.isArray(node)) return node.map((n) => interpolateTree(n, env));
  if (node && typeof node === "object") {
    return Object.fromEntries(
      Object.entries(node).map(([k, v]) => [k, interpolateTree(v, env)]),
    );
  }
  return node;
}

const read = (path: string) => Deno.readTextFileSync(`${ROOT}${path}`);
const schema = JSON.parse(read("tests/deploy/compose-spec.json"));
// It names draft 7 as `https://json-schema.org/draft-07/schema`, which Ajv knows under its
// canonical id; Ajv's default dialect is draft 7 anyway.
delete schema.$schema;
const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
const validate = ajv.compile(schema);

function load(path: string, env: Record<string, string>): Json {
  const model = interpolateTree(parseYaml(read(path)), env);
  assert.ok(validate(model), `${path}: ${ajv.errorsText(validate.errors)}`);
  return model;
}

const example = read(".env.example");
const exampleEnv = readDotEnv(example);
/** .env.example with its commented S3 lines switched on and the secrets filled in. */
function filledEnv(s3: boolean): Record<string, string> {
  const text = s3
    ? example.replace(
      /^#((?:COMPOSE_PROFILES|SEALPOST_BLOB_STORE|S3_SECRET_KEY|SEALPOST_S3_PUBLIC_URL)=)/gm,
      "$1",
    )
    : example;
  const env = readDotEnv(text);
  env.POSTGRES_PASSWORD = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
  if (s3) env.S3_SECRET_KEY = "s3-secret-from-dotenv";
  return env;
}

Deno.test("docker-compose.yml refuses to start without POSTGRES_PASSWORD instead of defaulting", () => {
  assert.equal(exampleEnv.POSTGRES_PASSWORD, "", ".env.example leaves the secret to fill in");
  assert.throws(
    () => load("docker-compose.yml", exampleEnv),
    /required variable POSTGRES_PASSWORD is missing a value: set POSTGRES_PASSWORD in \.env/,
  );
  // No secret has a default value anywhere in the compose files.
  for (
    const path of ["docker-compose.yml", "deploy/compose.caddy.yml", "deploy/compose.traefik.yml"]
  ) {
    const defaults = [...read(path).matchAll(/\$\{(\w*(?:PASSWORD|SECRET|TOKEN)\w*):?-([^}]+)\}/g)];
    assert.deepEqual(defaults.map((m) => m[0]), [], `${path} gives a secret a default`);
  }
});

Deno.test("docker-compose.yml with .env filled in is valid Compose and configures the relay", () => {
  const env = filledEnv(false);
  const model = load("docker-compose.yml", env);
  const relay = model.services.relay.environment;
  assert.equal(
    relay.DATABASE_URL,
    `postgres://sealpost:${env.POSTGRES_PASSWORD}@postgres:5432/sealpost`,
  );
  assert.equal(model.services.postgres.environment.POSTGRES_PASSWORD, env.POSTGRES_PASSWORD);
  const config = loadConfig(relay);
  assert.equal(config.blobStore, "fs");
  assert.equal(config.databaseUrl, relay.DATABASE_URL);
  assert.equal(config.registration, "invite");
  // The schema bites: a misspelt key is refused.
  const broken = structuredClone(model);
  broken.services.relay.restrat = "always";
  assert.equal(validate(broken), false);
  // The S3 services stay behind their profile.
  assert.deepEqual(model.services.seaweedfs.profiles, ["s3"]);
  assert.equal(model.services.relay.depends_on["s3-bucket"].required, false);
});

Deno.test("the s3 profile: SeaweedFS with the bucket created and presigned URLs for the published port", () => {
  const env = filledEnv(true);
  assert.equal(env.COMPOSE_PROFILES, "s3");
  const model = load("docker-compose.yml", env);
  const relay = model.services.relay.environment;
  const config = loadConfig(relay);
  assert.equal(config.blobStore, "s3");
  assert.equal(config.s3Endpoint, "http://seaweedfs:8333");
  assert.equal(config.s3PublicUrl, "http://localhost:8333");
  assert.equal(config.s3SecretAccessKey, "s3-secret-from-dotenv");
  assert.equal(config.s3PathStyle, "true");
  assert.ok(model.services.seaweedfs.ports.includes("8333:8333"), "S3 port published");
  assert.equal(model.services.seaweedfs.image, model.services["s3-bucket"].image);
  assert.doesNotMatch(model.services.seaweedfs.image, /minio/);
  // The identity SeaweedFS loads holds the relay's key pair.
  const identities = JSON.parse(model.configs["s3-identities"].content);
  assert.deepEqual(identities.identities[0].credentials[0], {
    accessKey: config.s3AccessKeyId,
    secretKey: config.s3SecretAccessKey,
  });
  // The bucket job creates the bucket the relay uses, and refuses to run without the secret.
  const script = model.services["s3-bucket"].command[0];
  assert.match(script, /s3\.bucket\.create -name \$BUCKET/);
  assert.equal(model.services["s3-bucket"].environment.BUCKET, config.s3Bucket);
  assert.match(script, /\[ -n "\$S3_SECRET_KEY" \] \|\|/);
  const syntax = new Deno.Command("sh", { args: ["-n", "-c", script], stderr: "piped" })
    .outputSync();
  assert.equal(
    syntax.code,
    0,
    `the bucket script parses: ${new TextDecoder().decode(syntax.stderr)}`,
  );
  // Without the secret the relay itself would not start either.
  assert.throws(
    () => loadConfig({ ...relay, AWS_SECRET_ACCESS_KEY: "" }),
    /SEALPOST_BLOB_STORE=s3: it needs AWS_SECRET_ACCESS_KEY/,
  );
});

Deno.test("the Caddy and Traefik overlays are valid Compose and need their domain", () => {
  const env = { ...filledEnv(false), SEALPOST_DOMAIN: "relay.example.com", ACME_EMAIL: "a@b.c" };
  const caddy = load("deploy/compose.caddy.yml", env);
  assert.equal(caddy.services.caddy.environment.SEALPOST_DOMAIN, "relay.example.com");
  assert.match(read("deploy/Caddyfile"), /reverse_proxy relay:8080/);
  const traefik = load("deploy/compose.traefik.yml", env);
  assert.ok(
    traefik.services.relay.labels.includes(
      "traefik.http.routers.sealpost.rule=Host(`relay.example.com`)",
    ),
  );
  assert.throws(() => load("deploy/compose.caddy.yml", filledEnv(false)), /SEALPOST_DOMAIN/);
});

Deno.test(".env.example names every variable the compose files read", () => {
  const listed = new Set(
    [...example.matchAll(/^#?([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]),
  );
  for (
    const path of ["docker-compose.yml", "deploy/compose.caddy.yml", "deploy/compose.traefik.yml"]
  ) {
    const used = [...read(path).matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]);
    const missing = [...new Set(used)].filter((name) => !listed.has(name));
    assert.deepEqual(missing, [], `${path} reads variables .env.example does not list`);
  }
});

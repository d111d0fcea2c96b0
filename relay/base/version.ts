/**
 * @module
 * The relay's name, version and the v1 additions it implements, reported by `/v1/info` (and
 * its OpenAPI example) and the CLI.
 */

/** Product name. */
export const NAME = "sealpost";
/** Release version (semver). */
export const VERSION = "0.1.0";
/** Wire protocol version. */
export const PROTOCOL_VERSION = 1;

/** v1 additions this relay implements, announced in `/v1/info` as `features`
 * (`docs/protocol.md` describes each). */
export const FEATURES: readonly string[] = [
  "openapi",
  "asyncapi",
  "invitations",
  "bounded_bodies",
  "claim_per_target",
  "token_expiry",
  "sealed_sends",
  "batched_replay",
];

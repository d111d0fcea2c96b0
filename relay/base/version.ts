/**
 * @module
 * The relay's name and version, reported by `/v1/info` and the CLI.
 */

/** Product name. */
export const NAME = "sealpost";
/** Release version (semver). */
export const VERSION = "0.1.0";
/** Wire protocol version. */
export const PROTOCOL_VERSION = 1;

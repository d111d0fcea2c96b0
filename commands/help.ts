/**
 * @module
 * `sealpost <command> --help`: each command's usage, what it does, its own flags and only the
 * settings it reads — not the whole table `serve` takes. The settings come from the one table
 * (`relay/config/settings.ts`), so their flags, variables and defaults cannot drift.
 */

import { describeSettings, SETTINGS } from "../relay/config/config.ts";

type Key = keyof typeof SETTINGS;

const DATABASE: Key[] = ["dataDir", "databaseUrl", "logLevel", "logFormat"];
const BLOBS: Key[] = [
  "blobStore",
  "s3Endpoint",
  "s3Region",
  "s3AccessKeyId",
  "s3SecretAccessKey",
  "s3Bucket",
  "s3PathStyle",
  "s3PublicUrl",
];
const PUSH: Key[] = [
  "apnsKeyFile",
  "apnsKey",
  "apnsKeyId",
  "apnsTeamId",
  "fcmServiceAccountFile",
  "fcmServiceAccount",
];

/** What `--help` shows for one command. */
type CommandHelp = { usage: string; about: string; flags?: string[]; settings?: Key[] };

const ARCHIVE: Omit<CommandHelp, "usage"> = {
  about: "",
  settings: [...DATABASE, ...BLOBS],
};

/** Every command but `serve` (whose help is the whole table) and `admin` (its own help). */
export const COMMAND_HELP: Record<string, CommandHelp> = {
  migrate: {
    usage: "sealpost migrate [--to N] [--flags]",
    about: "Applies pending migrations and exits. With --to, moves the schema to migration N " +
      "exactly: later migrations are reverted with their down() (roll back a deploy with the " +
      "newer binary, then start the older one; see docs/operations.md).",
    flags: [
      "  --to N                    a migration number or name (0: none); default the newest",
    ],
    settings: DATABASE,
  },
  doctor: {
    usage: "sealpost doctor [--flags]",
    about:
      "Checks the configuration, the database (reachable, migrated, LISTEN/NOTIFY on a server " +
      "Postgres), push credentials and the blob store; one line per check, exit 1 on a failure.",
    settings: ["port", "host", "publicUrl", "registration", ...DATABASE, ...BLOBS, ...PUSH],
  },
  export: {
    ...ARCHIVE,
    usage: "sealpost export FILE [--flags]",
    about: "Writes the database and blobs to FILE (a running embedded relay writes it).",
  },
  backup: { ...ARCHIVE, usage: "sealpost backup FILE [--flags]", about: "The same as export." },
  import: {
    ...ARCHIVE,
    usage: "sealpost import FILE [--flags]",
    about: "Loads FILE into an empty database and blob store, then verifies it.",
  },
  restore: { ...ARCHIVE, usage: "sealpost restore FILE [--flags]", about: "The same as import." },
  sweep: {
    usage: "sealpost sweep [--dry-run] [--flags]",
    about: "Expires messages, purges blobs and cleans up idle devices once, then exits.",
    flags: ["  --dry-run                 only count what would be removed"],
    settings: [
      ...DATABASE,
      ...BLOBS,
      "retention",
      "maxTtl",
      "inactiveAfter",
      "deleteAfter",
    ],
  },
  healthcheck: {
    usage: "sealpost healthcheck [--flags]",
    about: "Exits 0 when the relay on PORT answers /readyz with 200 (container health checks).",
    settings: ["port", "host"],
  },
};

/**
 * The help text of `command`.
 *
 * @example
 * ```ts
 * console.log(commandHelp("migrate"));
 * ```
 */
export function commandHelp(command: string): string {
  const help = COMMAND_HELP[command];
  if (!help) {
    return `Usage: sealpost ${command} [--flags]\n\nSettings (flag, environment variable, meaning):\n${describeSettings()}`;
  }
  const parts = [`Usage: ${help.usage}`, "", help.about];
  if (help.flags?.length) parts.push("", "Flags:", ...help.flags);
  if (help.settings?.length) {
    parts.push(
      "",
      "Settings it reads (flag, environment variable, meaning):",
      describeSettings(help.settings),
    );
  }
  return parts.join("\n");
}

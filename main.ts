/**
 * @module
 * The `sealpost` command line: `serve` (default), `migrate`, `doctor`. Reads configuration once
 * (environment and `--flags`), builds what the command needs, and turns every expected failure
 * into one plain line on stderr with a non-zero exit code.
 *
 * @example
 * ```sh
 * deno task start                 # serve with embedded defaults
 * sealpost serve --port 9000
 * sealpost migrate
 * sealpost doctor
 * ```
 */

import { parseArgs } from "node:util";
import { type Config, ConfigError, loadConfig, readEnv, SETTINGS } from "./relay/config/config.ts";
import { doctor } from "./commands/doctor.ts";
import { createLogger, IDENTITY_FIELDS } from "./relay/base/log.ts";
import { SchemaTooNewError } from "./relay/store/migrate.ts";
import { migrateCommand } from "./commands/migrate.ts";
import { runAdminCli } from "./commands/admin.ts";
import { serve } from "./commands/serve.ts";
import { sweepCommand } from "./commands/sweep.ts";
import { archiveCommand } from "./commands/archive.ts";
import { commandHelp } from "./commands/help.ts";
import { VERSION } from "./relay/base/version.ts";
import { isPgliteWorker } from "./relay/store/pglite_worker.ts";

const USAGE = `sealpost ${VERSION} — a blind relay for end-to-end-encrypted apps

Usage: sealpost [command] [--flags]

Commands:
  serve      run the relay (default)
  migrate    apply database migrations and exit; --to N moves the schema to migration N
  doctor     check configuration, database and blob store
  export FILE   write the database and blobs to an archive (a running embedded relay writes it)
  import FILE   load an archive into an empty database and blob store, then verify it
  backup FILE   the same as export; restore FILE is the same as import
  healthcheck  exit 0 when the relay on $PORT answers /readyz with 200 (container health checks)
  admin      manage devices, invites and the dashboard password ('sealpost admin help')
  sweep      expire messages, purge blobs, clean up idle devices once; --dry-run only counts
  version    print the version
  help       show this help; 'sealpost COMMAND --help' shows a command's flags and settings
             ('sealpost serve --help' lists every setting)

Every setting is an environment variable and a --flag; flags win.`;

/** Thrown for a bad command line; printed as one line with the usage hint. */
class UsageError extends Error {}

const COMMANDS = [
  "serve",
  "migrate",
  "doctor",
  "healthcheck",
  "export",
  "import",
  "backup",
  "restore",
  "sweep",
  "admin",
  "version",
  "help",
] as const;

function parseFlags(
  args: string[],
): { flags: Record<string, string>; help: boolean; dryRun: boolean; to?: string } {
  const options: Record<string, { type: "string" } | { type: "boolean" }> = {
    help: { type: "boolean" },
    "dry-run": { type: "boolean" },
    to: { type: "string" },
  };
  for (const setting of Object.values(SETTINGS)) options[setting.flag] = { type: "string" };
  try {
    const { values, positionals } = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length > 0) throw new UsageError(`Unexpected argument '${positionals[0]}'`);
    const { help, "dry-run": dryRun, to, ...flags } = values as Record<string, string | boolean>;
    return {
      flags: flags as Record<string, string>,
      help: help === true,
      dryRun: dryRun === true,
      to: typeof to === "string" ? to : undefined,
    };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const message = (error as Error).message.replace(/\. To specify.*$/s, "").replace(
      /^Unknown option/,
      "Unknown flag",
    );
    throw new UsageError(message);
  }
}

function fail(message: string, code = 1): never {
  console.error(`sealpost: ${message}`);
  Deno.exit(code);
}

function loggerFor(config: Config) {
  const format = config.logFormat ?? (Deno.stdout.isTerminal() ? "pretty" : "json");
  return createLogger({
    level: config.logLevel,
    format,
    redact: config.logIdentities ? [] : IDENTITY_FIELDS,
  });
}

async function main(argv: string[]): Promise<void> {
  const first = argv[0];
  if (first === "--help" || first === "-h") return console.log(USAGE);
  const isCommand = first !== undefined && !first.startsWith("-");
  const command = isCommand ? first : "serve";
  const rest = isCommand ? argv.slice(1) : argv;
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(`Unknown command '${command}'; expected one of ${COMMANDS.join(", ")}`);
  }
  if (command === "help") return console.log(USAGE);
  if (command === "version") return console.log(VERSION);
  // A one-shot command: exit with its code even if a driver leaves a handle open.
  if (command === "admin") Deno.exit(await runAdminCli(rest));

  const archive = ["export", "import", "backup", "restore"].includes(command);
  const file = archive && rest[0] && !rest[0].startsWith("-") ? rest[0] : undefined;
  const { flags, help, dryRun, to } = parseFlags(file ? rest.slice(1) : rest);
  if (archive && !file && !help) {
    throw new UsageError(`'${command}' needs a file: sealpost ${command} FILE`);
  }
  if (dryRun && command !== "sweep") throw new UsageError("--dry-run belongs to 'sweep'");
  if (to !== undefined && command !== "migrate") throw new UsageError("--to belongs to 'migrate'");
  if (help) return console.log(commandHelp(command));
  const config = loadConfig(readEnv(), flags);

  if (command === "serve") return await serve(config, loggerFor(config));
  if (command === "migrate") {
    return await migrateCommand(config, (line) => console.log(line), to);
  }
  if (command === "sweep") {
    const ok = await sweepCommand(config, loggerFor(config), {
      dryRun,
      print: (line) => console.log(line),
    });
    if (!ok) Deno.exit(1);
    return;
  }
  if (command === "doctor") {
    const ok = await doctor(config, (line) => console.log(line));
    if (!ok) Deno.exit(1);
  }
  if (archive && file) {
    const kind = command as "export" | "import" | "backup" | "restore";
    return await archiveCommand(kind, config, file, (line) => console.log(line));
  }
  if (command === "healthcheck") {
    // Containers without curl (distroless) use the binary itself for HEALTHCHECK.
    const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
    try {
      const res = await fetch(`http://${host}:${config.port}/readyz`, {
        signal: AbortSignal.timeout(3000),
      });
      await res.body?.cancel();
      if (res.status !== 200) fail(`not ready: /readyz answered ${res.status}`);
    } catch (error) {
      fail(`not ready: ${(error as Error).message}`);
    }
  }
}

// In the bundled artifact the embedded database's worker loads this same file (pglite_worker.ts).
if (import.meta.main && !isPgliteWorker()) {
  try {
    await main(Deno.args);
  } catch (error) {
    if (error instanceof UsageError) fail(`${error.message} (run 'sealpost help' for usage)`, 2);
    if (error instanceof ConfigError || error instanceof SchemaTooNewError) fail(error.message, 2);
    fail((error as Error).message ?? String(error));
  }
}

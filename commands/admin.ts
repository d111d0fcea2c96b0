/**
 * @module
 * `sealpost admin …`: the dashboard's actions for scripts. Reads the same configuration as
 * `serve` (environment and `--flags`), opens the database, acts through the relay's services and
 * records each change in the audit log as `cli`. Revoking publishes the `revoked` event on the
 * cluster bus, so with server Postgres the device's live connections close with `4003` on every
 * running instance. The embedded database (PGlite) is single-process: on a data directory a
 * running relay owns, these commands refuse with one line (stop the relay, or use the dashboard).
 *
 * @example
 * ```sh
 * sealpost admin devices list --status active
 * sealpost admin devices revoke <device id>
 * sealpost admin invites create --uses 5 --expires 7d --note "team phones"
 * sealpost admin invites list
 * sealpost admin invites revoke <invite id>
 * echo 'a long passphrase' | sealpost admin set-password
 * ```
 */

import { parseArgs } from "node:util";
import { setAdminPassword } from "../admin/auth.ts";
import { type AdminDeviceStatus, DEVICE_STATUSES, searchDevices } from "../admin/queries.ts";
import { recordAudit } from "../relay/store/audit.ts";
import { loadConfig, parseDuration, readEnv, SETTINGS } from "../relay/config/config.ts";
import type { DatabaseHandle } from "../relay/store/database.ts";
import { openBus } from "../relay/cluster/mod.ts";
import { type OwnClaim, withDeps } from "./open.ts";
import type { Deps } from "../relay/deps.ts";
import { adminRevokeDevice } from "../relay/accounts/devices.ts";
import { RelayError } from "../relay/errors.ts";
import { createInvite, listInvites, revokeInvite } from "../relay/accounts/invites.ts";
import { createLogger } from "../relay/base/log.ts";
import { migrate } from "../relay/store/migrate.ts";
import { claimDataDir, DataDirBusyError } from "./data_dir.ts";

/** Usage of `sealpost admin`. */
export const ADMIN_USAGE = `Usage: sealpost admin <command> [--flags]

Commands:
  devices list [--status S] [--query Q] [--json]   list devices (S: ${DEVICE_STATUSES.join(", ")})
  devices revoke <device id>                      revoke a device; its connections close (4003)
  invites create [--uses N] [--expires 7d] [--note TEXT] [--json]
                                                  create an invite and print its code (once)
  invites list [--json]                           list invites
  invites revoke <invite id>                      revoke an invite
  set-password [--password P]                     set the dashboard password (else read from stdin)

Database settings (--data-dir, --database-url, …) are those of 'sealpost serve --help'.`;

/** A bad `admin` command line (exit code 2). */
export class AdminUsageError extends Error {}

/** What the command reads and writes, injectable for tests. */
export type AdminIo = {
  env: Record<string, string | undefined>;
  print(line: string): void;
  /** Where failures go (stderr). */
  printError(line: string): void;
  readStdin(): Promise<string>;
};

const ACTOR = "cli";

function options() {
  const opts: Record<string, { type: "string" } | { type: "boolean" }> = {
    help: { type: "boolean" },
    json: { type: "boolean" },
    status: { type: "string" },
    query: { type: "string" },
    uses: { type: "string" },
    expires: { type: "string" },
    note: { type: "string" },
    password: { type: "string" },
  };
  for (const setting of Object.values(SETTINGS)) opts[setting.flag] = { type: "string" };
  return opts;
}

const ADMIN_FLAGS = ["help", "json", "status", "query", "uses", "expires", "note", "password"];

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd())
    .join("\n");
}

function iso(ms: number | null): string {
  return ms === null ? "-" : new Date(ms).toISOString();
}

/**
 * Runs `sealpost admin <args>`; returns the exit code (0 ok, 1 failed, 2 bad usage).
 *
 * @example
 * ```ts
 * const code = await adminCommand(["invites", "list"], { env, print, printError, readStdin });
 * ```
 */
export async function adminCommand(args: string[], io: AdminIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: options(), strict: true, allowPositionals: true });
  } catch (error) {
    throw new AdminUsageError((error as Error).message.replace(/\. To specify.*$/s, ""));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const [group, action, target, ...extra] = parsed.positionals;
  if (values.help || group === undefined || group === "help") {
    io.print(ADMIN_USAGE);
    return 0;
  }
  if (extra.length > 0) throw new AdminUsageError(`Unexpected argument '${extra[0]}'`);
  const flags: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) {
    if (!ADMIN_FLAGS.includes(key) && typeof value === "string") flags[key] = value;
  }
  const command = group === "set-password" ? group : `${group} ${action ?? ""}`.trim();
  const needsTarget = command === "devices revoke" || command === "invites revoke";
  const known = ["devices list", "devices revoke", "invites create", "invites list"];
  if (!needsTarget && !known.includes(command) && command !== "set-password") {
    throw new AdminUsageError(`Unknown admin command '${command}'`);
  }
  if (needsTarget && !target) throw new AdminUsageError(`'${command}' needs an id`);
  if (!needsTarget && (command === "set-password" ? action : target)) {
    throw new AdminUsageError(
      `Unexpected argument '${command === "set-password" ? action : target}'`,
    );
  }

  // Read the password before opening the database, so a bad one fails fast.
  let password: string | undefined;
  if (command === "set-password") {
    password = typeof values.password === "string"
      ? values.password
      : (await io.readStdin()).replace(/\r?\n$/, "");
  }

  const config = loadConfig(io.env, flags);
  let claim;
  try {
    claim = await claimDataDir(config, "admin") as OwnClaim;
  } catch (error) {
    if (!(error instanceof DataDirBusyError)) throw error;
    io.printError(`sealpost: ${error.message}`);
    return 1;
  }
  const log = createLogger({ level: "warn", format: "json", sink: () => {} });
  try {
    return await withDeps(config, "admin", log, async (deps, database) => {
      await migrate(database.db);
      return await run(deps, database, command, target, values, password, io);
    }, claim);
  } catch (error) {
    if (error instanceof RelayError) {
      io.printError(`sealpost: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

async function run(
  deps: Deps,
  database: DatabaseHandle,
  command: string,
  target: string | undefined,
  values: Record<string, string | boolean | undefined>,
  password: string | undefined,
  io: AdminIo,
): Promise<number> {
  const json = values.json === true;
  switch (command) {
    case "devices list": {
      const status = values.status as string | undefined;
      if (status !== undefined && !(DEVICE_STATUSES as string[]).includes(status)) {
        throw new AdminUsageError(`--status: expected one of ${DEVICE_STATUSES.join(", ")}`);
      }
      const devices = await searchDevices(deps, {
        q: values.query as string | undefined,
        status: status as AdminDeviceStatus | undefined,
        limit: 1000,
      });
      if (json) {
        io.print(JSON.stringify({ devices }));
      } else {
        io.print(table([
          ["DEVICE", "ACCOUNT", "STATUS", "PLATFORM", "NAME", "LAST SEEN"],
          ...devices.map((d) => [
            d.id,
            d.account,
            d.status,
            d.platform ?? "-",
            d.name ?? "-",
            iso(d.last_seen_at),
          ]),
        ]));
      }
      return 0;
    }
    case "devices revoke": {
      if (!(await adminRevokeDevice(deps, target!, ACTOR))) {
        io.printError(`sealpost: No such device: ${target}`);
        return 1;
      }
      // Tell running instances (over Postgres LISTEN/NOTIFY) to close its connections.
      if (database.kind === "postgres" && database.url) {
        const bus = await openBus(database, `cli-${crypto.randomUUID()}`, deps.log);
        bus.publish({ kind: "revoked", device: target! });
        // The Postgres bus's publish() sends its NOTIFY in the background and close() does not wait for
        // it (closing first leaves the process hanging on the orphaned query), so give it a
        // moment: one round trip on a local network is well under this.
        await new Promise((resolve) => setTimeout(resolve, 300));
        await bus.close();
      }
      io.print(`Revoked device ${target}`);
      return 0;
    }
    case "invites create": {
      const uses = values.uses === undefined ? 1 : Number(values.uses);
      if (!Number.isInteger(uses) || uses < 1) {
        throw new AdminUsageError(`--uses: expected a whole number from 1, got '${values.uses}'`);
      }
      let expiresAt: number | null = null;
      if (typeof values.expires === "string") {
        try {
          expiresAt = deps.clock.now() + parseDuration(values.expires);
        } catch (error) {
          throw new AdminUsageError(
            `--expires: ${(error as Error).message}, got '${values.expires}'`,
          );
        }
      }
      const note = typeof values.note === "string" ? values.note.slice(0, 200) : null;
      const invite = await createInvite(deps.db, deps.clock, { maxUses: uses, expiresAt, note });
      await recordAudit(deps, ACTOR, "invite.create", {
        invite: invite.id,
        max_uses: invite.max_uses,
        expires_at: invite.expires_at,
        note: invite.note,
      });
      const link = `${deps.config.publicUrl}/join?invite=${encodeURIComponent(invite.code)}`;
      if (json) io.print(JSON.stringify({ ...invite, link }));
      else {
        io.print(`Invite ${invite.id}: code ${invite.code}`);
        io.print(`Registration link: ${link}`);
        io.print(`Uses: ${invite.max_uses}; expires: ${iso(invite.expires_at)}`);
      }
      return 0;
    }
    case "invites list": {
      const invites = await listInvites(deps.db, deps.clock);
      if (json) io.print(JSON.stringify({ invites }));
      else {
        io.print(table([
          ["ID", "STATUS", "USED", "EXPIRES", "NOTE"],
          ...invites.map((i) => [
            i.id,
            i.status,
            `${i.uses}/${i.max_uses}`,
            iso(i.expires_at),
            i.note ?? "-",
          ]),
        ]));
      }
      return 0;
    }
    case "invites revoke": {
      if (!(await revokeInvite(deps.db, deps.clock, target!))) {
        io.printError(`sealpost: No such invite: ${target}`);
        return 1;
      }
      await recordAudit(deps, ACTOR, "invite.revoke", {
        invite: target,
        before: "active",
        after: "revoked",
      });
      io.print(`Revoked invite ${target}`);
      return 0;
    }
    case "set-password": {
      await setAdminPassword(deps.db, deps.clock, password ?? "");
      await recordAudit(deps, ACTOR, "admin.password", { via: "cli" });
      io.print("Admin password set; existing dashboard sessions were ended.");
      if (deps.config.adminPassword !== undefined) {
        io.print(
          "Note: SEALPOST_ADMIN_PASSWORD is set here; where the relay has it set, it wins over the stored password.",
        );
      }
      return 0;
    }
  }
  throw new AdminUsageError(`Unknown admin command '${command}'`);
}

/** Reads stdin to its end (a pipe), or one line without echo (a terminal). */
export async function readPasswordFromStdin(): Promise<string> {
  if (!Deno.stdin.isTerminal()) return await new Response(Deno.stdin.readable).text();
  const encoder = new TextEncoder();
  await Deno.stdout.write(encoder.encode("New admin password: "));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  const buffer = new Uint8Array(1);
  try {
    while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null || buffer[0] === 13 || buffer[0] === 10) break;
      if (buffer[0] === 3) throw new AdminUsageError("Cancelled");
      if (buffer[0] === 127) bytes.pop();
      else bytes.push(buffer[0]);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stdout.write(encoder.encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** `main.ts`'s entry: runs with the process's environment and streams. */
export async function runAdminCli(args: string[]): Promise<number> {
  try {
    return await adminCommand(args, {
      env: readEnv(),
      print: (line) => console.log(line),
      printError: (line) => console.error(line),
      readStdin: readPasswordFromStdin,
    });
  } catch (error) {
    if (error instanceof AdminUsageError) {
      console.error(`sealpost: ${error.message} (run 'sealpost admin help' for usage)`);
      return 2;
    }
    throw error;
  }
}

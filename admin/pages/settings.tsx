/**
 * @module
 * `/admin/settings`: the run-time settings every instance applies (registration mode, default
 * retention, inactivity thresholds, rate limits), stored in the database; each change goes to the
 * audit log. A POST may carry any subset of the fields (the invites page posts only the mode).
 */

import type { Hono } from "hono";
import type { ComponentChildren } from "preact";
import {
  formatDurationS,
  parseRuntimeValue,
  type RuntimeKey,
  type RuntimeValues,
} from "../../relay/config/runtime.ts";
import { RelayError } from "../../relay/errors.ts";
import { ASSET_URLS } from "../assets.ts";
import { Csrf, Layout, Notice } from "../components/layout.tsx";
import { page } from "../render.ts";
import { formFields } from "../session.ts";
import type { AdminDeps, AdminEnv } from "../types.ts";

/** Each editable setting: its form field, label and hint. */
const FIELDS: { key: Exclude<RuntimeKey, "registration">; label: string; hint: string }[] = [
  {
    key: "retention_s",
    label: "Default retention of new groups",
    hint: "Like 30d or 12h; 0 keeps messages until deleted when the server's max TTL is forever.",
  },
  {
    key: "inactive_after_s",
    label: "Inactive after",
    hint: "A device with no activity this long is inactive: no push, not counted in fan-out.",
  },
  {
    key: "delete_after_s",
    label: "Delete after",
    hint: "A device with no activity this long is deleted. Must be longer than inactive after.",
  },
  { key: "rate_send", label: "Send rate per device", hint: "Like 100/min, 5/s or off." },
  { key: "rate_poll", label: "Inbox polls per device", hint: "Like 200/min or off." },
  { key: "rate_auth", label: "Auth calls per IP address", hint: "Like 30/min or off." },
  { key: "rate_claim", label: "Key package claims per device", hint: "Like 60/min or off." },
];

function shown(key: RuntimeKey, values: RuntimeValues): string {
  const value = values[key];
  if (typeof value === "number") return value === 0 ? "0" : formatDurationS(value);
  return String(value);
}

/** The settings form. */
export function SettingsView(
  props: {
    values: RuntimeValues;
    csrf: string;
    notice?: string;
    error?: string;
    typed?: Record<string, string>;
  },
) {
  const value = (key: RuntimeKey) => props.typed?.[key] ?? shown(key, props.values);
  return (
    <>
      <h1>Settings</h1>
      <p class="hint">
        Stored in the database and applied by every instance within a few seconds. Each change is
        recorded in the <a href="/admin/audit">audit log</a>.
      </p>
      {props.notice && <Notice>{props.notice}</Notice>}
      {props.error && <Notice kind="error">{props.error}</Notice>}
      <form method="post" action="/admin/settings">
        <Csrf token={props.csrf} />
        <fieldset>
          <legend>Registration</legend>
          <label for="registration">Mode</label>
          <select id="registration" name="registration">
            {(["open", "invite", "closed"] as const).map((m) => (
              <option value={m} selected={value("registration") === m}>{m}</option>
            ))}
          </select>
        </fieldset>
        <fieldset>
          <legend>Retention, device lifecycle and rate limits</legend>
          {FIELDS.map((f) => (
            <div class="field">
              <label for={f.key}>{f.label}</label>
              <input
                id={f.key}
                name={f.key}
                value={value(f.key)}
                required
                aria-describedby={`${f.key}-hint`}
              />
              <p class="hint" id={`${f.key}-hint`}>{f.hint}</p>
            </div>
          ))}
        </fieldset>
        <button type="submit" class="primary">Save settings</button>
      </form>
    </>
  );
}

/** Parses the submitted subset of fields into changes; throws `invalid_request`. */
export function parseSettingsForm(form: Record<string, string>): Partial<RuntimeValues> {
  const changes: Record<string, unknown> = {};
  for (const key of ["registration", ...FIELDS.map((f) => f.key)] as RuntimeKey[]) {
    if (form[key] === undefined) continue;
    changes[key] = parseRuntimeValue(key, form[key]);
  }
  return changes as Partial<RuntimeValues>;
}

/** Registers the settings routes. */
export function settingsPage(app: Hono<AdminEnv>, deps: AdminDeps): void {
  const shell = (csrf: string, body: ComponentChildren) => (
    <Layout title="Settings" section="/admin/settings" csrf={csrf} assets={ASSET_URLS}>
      {body}
    </Layout>
  );

  app.get("/settings", async (c) => {
    const csrf = c.get("session").csrf;
    const notice = c.req.query("done") === "saved" ? "Settings saved." : undefined;
    return page(
      c,
      shell(csrf, <SettingsView values={await deps.settings.get()} csrf={csrf} notice={notice} />),
    );
  });

  app.post("/settings", async (c) => {
    const csrf = c.get("session").csrf;
    const form = await formFields(c);
    let changed: RuntimeKey[];
    try {
      changed = await deps.settings.update(parseSettingsForm(form), c.get("actor"));
    } catch (error) {
      if (!(error instanceof RelayError)) throw error;
      return page(
        c,
        shell(
          csrf,
          <SettingsView
            values={await deps.settings.get()}
            csrf={csrf}
            error={error.message}
            typed={form}
          />,
        ),
        400,
      );
    }
    if (changed.length > 0) {
      deps.log.info("settings changed by admin", { changed, actor: c.get("actor") });
    }
    if (form.return === "/admin/invites") return c.redirect("/admin/invites?done=mode", 303);
    return c.redirect("/admin/settings?done=saved", 303);
  });
}

/**
 * @module
 * `/admin/invites`: create invites (uses, expiry, note) — the code is shown once, with a QR code
 * of the registration link — list and revoke them, and switch the registration mode.
 */

import { shortId } from "../../relay/protocol.ts";
import { idParam } from "../params.ts";
import type { Hono } from "hono";
import { recordAudit } from "../../relay/store/audit.ts";
import { parseDuration } from "../../relay/config/config.ts";
import {
  createInvite,
  type InviteInfo,
  listInvites,
  revokeInvite,
} from "../../relay/accounts/invites.ts";
import type { RegistrationMode } from "../../relay/config/runtime.ts";
import { RelayError } from "../../relay/errors.ts";
import { ASSET_URLS } from "../assets.ts";
import { formatTime } from "../components/format.ts";
import { Csrf, Layout, Notice } from "../components/layout.tsx";
import { QrCode } from "../components/qr.tsx";
import { Badge, Table } from "../components/ui.tsx";
import { page } from "../render.ts";
import { formFields } from "../session.ts";
import type { AdminDeps, AdminEnv } from "../types.ts";

/** The link a new device registers with: the relay's address and the code. */
export function registrationLink(publicUrl: string, code: string): string {
  return `${publicUrl}/join?invite=${encodeURIComponent(code)}`;
}

/** A just-created invite: the only time its code is shown. */
export function CreatedInvite(props: { code: string; link: string; invite: InviteInfo }) {
  return (
    <section aria-labelledby="created">
      <h2 id="created">New invite</h2>
      <Notice>Copy the code now: it is stored only as a hash and will not be shown again.</Notice>
      <p>
        Code: <code class="code-box" data-invite-code>{props.code}</code>
      </p>
      <p>
        Registration link: <a href={props.link}>{props.link}</a>
      </p>
      <QrCode text={props.link} label={`QR code of the registration link ${props.link}`} />
      <p class="hint">
        {props.invite.max_uses} use{props.invite.max_uses === 1 ? "" : "s"}, expires{" "}
        {props.invite.expires_at ? formatTime(props.invite.expires_at) : "never"}
      </p>
    </section>
  );
}

/** The registration mode switch. */
export function RegistrationSwitch(props: { mode: RegistrationMode; csrf: string }) {
  return (
    <form method="post" action="/admin/settings" class="row">
      <Csrf token={props.csrf} />
      <input type="hidden" name="return" value="/admin/invites" />
      <fieldset>
        <legend>Registration mode</legend>
        {(["open", "invite", "closed"] as const).map((mode) => (
          <label class="choice">
            <input type="radio" name="registration" value={mode} checked={props.mode === mode} />
            {" "}
            {mode === "open"
              ? "open — anyone may register"
              : mode === "invite"
              ? "invite — new accounts need an invite code"
              : "closed — no new devices"}
          </label>
        ))}
        <button type="submit">Save mode</button>
      </fieldset>
    </form>
  );
}

/** The invites page. */
export function InvitesView(
  props: {
    invites: InviteInfo[];
    mode: RegistrationMode;
    csrf: string;
    created?: { code: string; link: string; invite: InviteInfo };
    notice?: string;
    error?: string;
  },
) {
  return (
    <>
      <h1>Invites</h1>
      {props.notice && <Notice>{props.notice}</Notice>}
      {props.error && <Notice kind="error">{props.error}</Notice>}
      {props.created && <CreatedInvite {...props.created} />}
      <p>
        Registration is <strong data-registration-mode>{props.mode}</strong>.
      </p>
      <RegistrationSwitch mode={props.mode} csrf={props.csrf} />
      <form method="post" action="/admin/invites">
        <Csrf token={props.csrf} />
        <fieldset>
          <legend>Create an invite</legend>
          <div class="row">
            <div class="field">
              <label for="uses">Uses</label>
              <input id="uses" name="uses" type="number" min="1" max="1000000" value="1" required />
            </div>
            <div class="field">
              <label for="expires">Expires after</label>
              <input id="expires" name="expires" placeholder="7d" aria-describedby="expires-hint" />
            </div>
            <div class="field">
              <label for="note">Note</label>
              <input id="note" name="note" maxLength={200} placeholder="for Alice's phone" />
            </div>
          </div>
          <p class="hint" id="expires-hint">Like 7d or 12h; empty never expires.</p>
          <button type="submit" class="primary">Create invite</button>
        </fieldset>
      </form>
      <h2>All invites</h2>
      <Table caption={`${props.invites.length} invite${props.invites.length === 1 ? "" : "s"}`}>
        <thead>
          <tr>
            <th scope="col">Id</th>
            <th scope="col">Note</th>
            <th scope="col" class="num">Used</th>
            <th scope="col">Expires</th>
            <th scope="col">Status</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {props.invites.map((i) => (
            <tr data-invite={i.id}>
              <td>
                <code>{i.id}</code>
              </td>
              <td>{i.note ?? "—"}</td>
              <td class="num">{i.uses} / {i.max_uses}</td>
              <td>{i.expires_at ? formatTime(i.expires_at) : "never"}</td>
              <td>
                <Badge status={i.status} />
              </td>
              <td>
                {i.status === "active" && (
                  <form method="post" action={`/admin/invites/${encodeURIComponent(i.id)}/revoke`}>
                    <Csrf token={props.csrf} />
                    <button type="submit" aria-label={`Revoke invite ${i.id}`}>Revoke</button>
                  </form>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </Table>
    </>
  );
}

/** Parses the create form; throws `invalid_request` with a readable message. */
export function parseInviteForm(
  form: Record<string, string>,
  now: number,
): { maxUses: number; expiresAt: number | null; note: string | null } {
  const maxUses = Number(form.uses ?? "1");
  if (!Number.isInteger(maxUses) || maxUses < 1) {
    throw new RelayError("invalid_request", "Uses must be a whole number from 1");
  }
  let expiresAt: number | null = null;
  const expires = (form.expires ?? "").trim();
  if (expires) {
    try {
      expiresAt = now + parseDuration(expires);
    } catch (error) {
      throw new RelayError(
        "invalid_request",
        `Cannot parse the expiry: ${(error as Error).message}, got '${expires}'`,
      );
    }
  }
  const note = (form.note ?? "").trim().slice(0, 200) || null;
  return { maxUses, expiresAt, note };
}

/** Registers the invite routes. */
export function invitesPage(app: Hono<AdminEnv>, deps: AdminDeps): void {
  const render = async (
    csrf: string,
    extra: {
      created?: { code: string; link: string; invite: InviteInfo };
      notice?: string;
      error?: string;
    } = {},
  ) => {
    const [invites, settings] = await Promise.all([
      listInvites(deps.db, deps.clock),
      deps.settings.get(),
    ]);
    return (
      <Layout title="Invites" section="/admin/invites" csrf={csrf} assets={ASSET_URLS}>
        <InvitesView invites={invites} mode={settings.registration} csrf={csrf} {...extra} />
      </Layout>
    );
  };

  app.get("/invites", async (c) => {
    const done = c.req.query("done");
    const notice = done === "revoked"
      ? "Invite revoked."
      : done === "mode"
      ? "Registration mode saved."
      : undefined;
    return page(c, await render(c.get("session").csrf, { notice }));
  });

  app.post("/invites", async (c) => {
    const csrf = c.get("session").csrf;
    let options;
    try {
      options = parseInviteForm(await formFields(c), deps.clock.now());
    } catch (error) {
      if (!(error instanceof RelayError)) throw error;
      return page(c, await render(csrf, { error: error.message }), 400);
    }
    const invite = await createInvite(deps.db, deps.clock, options);
    await recordAudit(deps, c.get("actor"), "invite.create", {
      invite: invite.id,
      max_uses: invite.max_uses,
      expires_at: invite.expires_at,
      note: invite.note,
    });
    const { code, ...info } = invite;
    const link = registrationLink(deps.config.publicUrl, code);
    return page(c, await render(csrf, { created: { code, link, invite: info } }), 201);
  });

  app.post("/invites/:id/revoke", async (c) => {
    const id = idParam(c, "id", shortId);
    if (!(await revokeInvite(deps.db, deps.clock, id))) {
      return page(c, await render(c.get("session").csrf, { error: "No such invite." }), 404);
    }
    await recordAudit(deps, c.get("actor"), "invite.revoke", {
      invite: id,
      before: "active",
      after: "revoked",
    });
    return c.redirect("/admin/invites?done=revoked", 303);
  });
}

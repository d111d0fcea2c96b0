/**
 * @module
 * A group's send capability (issue 16, sealed group sends): a 32-byte secret the members share
 * inside their encryption (the chat example derives it from the MLS epoch), of which the relay
 * keeps only the SHA-256 — the `send_verifier`. A sealed send presents the secret; the relay
 * hashes it and compares under the group's row lock (`persist.ts`).
 *
 * Why a hash and not a signature key: the capability only gates the right to store into the
 * group (against strangers filling it); who sent a message is proved inside the ciphertext. A
 * relay that sees the secret in transit learns nothing it could not already do (it stores what it
 * likes), and one hash per send costs less than an Ed25519 verification with no replay rules.
 * What matters is that a removed member loses it: every membership removal clears the verifier
 * (`groups.ts`), so sealed sends are refused until a remaining member sets the next one.
 */

import type { Deps } from "../deps.ts";
import { fromBase64Url } from "../base/encoding.ts";
import { invalid } from "../errors.ts";
import type { Principal } from "../authenticate.ts";
import { roleIn } from "./groups.ts";

/**
 * Sets (or with `null` clears) a group's send verifier: any member may, as any member may send.
 * `404` for non-members. Replacing it cuts off every holder of the previous capability at once.
 */
export async function setSendVerifier(
  deps: Deps,
  caller: Principal,
  group: string,
  verifier: string | null,
): Promise<void> {
  await roleIn(deps, group, caller.account);
  const bytes = verifier === null ? null : fromBase64Url(verifier);
  if (bytes !== null && bytes?.length !== 32) throw invalid("verifier: must be 32 bytes");
  await deps.db.updateTable("groups").set({ send_verifier: bytes }).where("id", "=", group)
    .execute();
}

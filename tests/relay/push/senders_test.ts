/**
 * The push-sender port's contract (relay/push/mod.ts), one suite run against each of the four
 * senders built by `openPushSenders` — Web Push, UnifiedPush, APNs and FCM — each sending to its
 * local verifying service (tests/helpers/push.ts, tests/helpers/push_services.ts), which checks
 * the request as the real service would (VAPID and RFC 8291 encryption; HTTP/2 and the ES256
 * provider token; the OAuth exchange and a data-only message). The contract: a verified wake-up
 * is `sent`; a target the service calls gone is `gone`; 429/5xx is `retry` not before
 * `Retry-After`; a refused request is `failed`; and `send` never throws — a service that cannot
 * be reached is `retry`. The per-service details stay in each sender's own test file.
 */

import assert from "node:assert/strict";
import { systemClock } from "../../../relay/base/clock.ts";
import { loadConfig } from "../../../relay/config/config.ts";
import { AddressGuard } from "../../../relay/push/address_guard.ts";
import type { PushKind, PushSender, PushTarget } from "../../../relay/push/mod.ts";
import { openPushSenders, type PushEndpoints } from "../../../relay/push/open.ts";
import { freePort } from "../../helpers/postgres.ts";
import { type Answer, testCertificates, WebPushService } from "../../helpers/push.ts";
import { apnsKey, ApnsService, FCM_UNREGISTERED, FcmService } from "../../helpers/push_services.ts";
import { openTestDatabase } from "../../helpers/relay.ts";

/** One sender with its local service, as the contract drives it. */
type Subject = {
  sender: PushSender;
  /** A fresh target the service knows. */
  target(): Promise<PushTarget>;
  /** Wake-ups the service verified and accepted for `target`. */
  delivered(target: PushTarget): number;
  /** Requests the service refused as malformed (a failed check), for any target. */
  rejected(): string[];
  /** Answers the service gives `target`'s next requests. */
  script(target: PushTarget, answers: Answer[]): void;
  /** How this service says a target is gone. */
  gone: Answer;
  /** How this service refuses a request for good. */
  refused: Answer;
  /** The same kind of sender and a target, with the service unreachable. */
  unreachable(): Promise<{ sender: PushSender; target: PushTarget }>;
};

const hexToken = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0"))
    .join("");

/** Starts the three local services and opens every sender against them. */
async function world() {
  const { ca } = await testCertificates();
  const key = await apnsKey();
  const apns = await ApnsService.start(key);
  const fcm = await FcmService.start();
  const web = await WebPushService.start();
  const { handle } = await openTestDatabase("pglite");
  const config = loadConfig({
    SEALPOST_APNS_KEY: key.pem,
    SEALPOST_APNS_KEY_ID: key.keyId,
    SEALPOST_APNS_TEAM_ID: key.teamId,
    SEALPOST_FCM_SERVICE_ACCOUNT: JSON.stringify(fcm.account!.json),
  });
  const guard = new AddressGuard({ allowPrivate: true });
  const open = (endpoints: PushEndpoints) =>
    openPushSenders(config, handle.db, systemClock, guard, { caCerts: [ca], ...endpoints });
  const live = await open({
    apnsProductionUrl: apns.origin,
    apnsSandboxUrl: apns.origin,
    fcmApiUrl: fcm.origin,
  });
  const nowhere = `https://127.0.0.1:${freePort()}`;
  const down = await open({
    apnsProductionUrl: nowhere,
    apnsSandboxUrl: nowhere,
    fcmApiUrl: nowhere,
  });
  const sender = (kind: PushKind) => live.senders.get(kind)!;
  const downSender = (kind: PushKind) => down.senders.get(kind)!;
  const pathOf = (target: PushTarget) =>
    new URL((target as { endpoint: string }).endpoint).pathname;
  const webSubject = (kind: "webpush" | "unifiedpush"): Subject => ({
    sender: sender(kind),
    target: async () => {
      if (kind === "unifiedpush") return { kind, endpoint: web.endpoint() };
      const { endpoint, keys } = await web.subscribe();
      return { kind, endpoint, p256dh: keys.p256dh, auth: keys.auth };
    },
    delivered: (target) => web.deliveries.filter((d) => d.path === pathOf(target)).length,
    rejected: () => web.rejected,
    script: (target, answers) => web.answers.set(pathOf(target), answers),
    gone: { status: 410 },
    refused: { status: 400, body: "bad request" },
    async unreachable() {
      const target = await this.target() as PushTarget & { endpoint: string };
      return { sender: sender(kind), target: { ...target, endpoint: `${nowhere}/push/x` } };
    },
  });
  const subjects: Record<PushKind, Subject> = {
    webpush: webSubject("webpush"),
    unifiedpush: webSubject("unifiedpush"),
    apns: {
      sender: sender("apns"),
      target: () =>
        Promise.resolve({
          kind: "apns",
          token: hexToken(),
          topic: "com.example.chat",
          sandbox: false,
        }),
      delivered: (target) =>
        apns.deliveries.filter((d) => d.token === (target as { token: string }).token).length,
      rejected: () => apns.rejected,
      script: (target, answers) => apns.answers.set((target as { token: string }).token, answers),
      gone: { status: 410, body: { reason: "Unregistered", timestamp: Date.now() } },
      refused: { status: 400, body: { reason: "BadTopic" } },
      unreachable: () =>
        Promise.resolve({
          sender: downSender("apns"),
          target: { kind: "apns", token: hexToken(), topic: "com.example.chat", sandbox: false },
        }),
    },
    fcm: {
      sender: sender("fcm"),
      target: () => Promise.resolve({ kind: "fcm", token: crypto.randomUUID() }),
      delivered: (target) =>
        fcm.deliveries.filter((d) => d.token === (target as { token: string }).token).length,
      rejected: () => fcm.rejected,
      script: (target, answers) => fcm.answers.set((target as { token: string }).token, answers),
      gone: FCM_UNREGISTERED,
      refused: {
        status: 400,
        body: { error: { code: 400, status: "INVALID_ARGUMENT", message: "bad" } },
      },
      unreachable: () =>
        Promise.resolve({
          sender: downSender("fcm"),
          target: { kind: "fcm", token: crypto.randomUUID() },
        }),
    },
  };
  return {
    subjects,
    close: async () => {
      live.close();
      down.close();
      await Promise.all([apns.close(), fcm.close(), web.close()]);
      await handle.close();
    },
  };
}

for (const kind of ["webpush", "unifiedpush", "apns", "fcm"] as const) {
  Deno.test({
    name: `PushSender contract: ${kind}`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async (t) => {
      const { subjects, close } = await world();
      const s = subjects[kind];
      try {
        assert.equal(s.sender.kind, kind);

        await t.step("a wake-up the service verifies answers sent, once", async () => {
          const target = await s.target();
          assert.deepEqual(await s.sender.send(target, { group: "g".repeat(22) }), {
            result: "sent",
          });
          assert.equal(s.delivered(target), 1);
          assert.deepEqual(s.rejected(), []);
        });

        await t.step("a target the service calls gone answers gone", async () => {
          const target = await s.target();
          s.script(target, [s.gone]);
          assert.equal((await s.sender.send(target, {})).result, "gone");
          assert.equal(s.delivered(target), 0);
        });

        await t.step("429 and 5xx answer retry, not before Retry-After", async () => {
          const target = await s.target();
          s.script(target, [
            { status: 503, headers: { "retry-after": "7" } },
            { status: 429, headers: { "retry-after": "3" } },
          ]);
          const first = await s.sender.send(target, {});
          assert.equal(first.result, "retry");
          assert.equal(first.result === "retry" && first.retryAfterMs, 7_000);
          const second = await s.sender.send(target, {});
          assert.equal(second.result === "retry" && second.retryAfterMs, 3_000);
          assert.equal((await s.sender.send(target, {})).result, "sent", "then it goes through");
        });

        await t.step("a request the service refuses for good answers failed", async () => {
          const target = await s.target();
          s.script(target, [s.refused]);
          assert.equal((await s.sender.send(target, {})).result, "failed");
        });

        await t.step("send() never throws: an unreachable service answers retry", async () => {
          const { sender, target } = await s.unreachable();
          const outcome = await sender.send(target, {});
          assert.equal(outcome.result, "retry", JSON.stringify(outcome));
        });
      } finally {
        await close();
      }
    },
  });
}

/**
 * @module
 * SDK sessions for the load: one {@link Session} per device, subscribed to its group, opened
 * with bounded concurrency and ready once the relay said `synced`. Messages go to whatever sink
 * is current, so the same sessions serve several runs.
 *
 * Acks: `sdk` leaves the SDK's default (automatic acks, coalesced per group over `ackDelayMs`,
 * 100 ms); `every` sends one `ack` frame per message (`ackDelayMs: 0`, the SDK's behaviour before
 * it coalesced); `none` never acks.
 */

import { type HttpClient, type Message, Session } from "../client/mod.ts";
import { pool } from "./stats.ts";

/** How recipients acknowledge. */
export type AckMode = "sdk" | "every" | "none";

/** A set of open sessions. */
export type SessionSet = {
  sessions: Session[];
  /** Seconds it took to open them all (connect, auth, subscribe, synced). */
  seconds: number;
  /** Sessions that reconnected since opening (a 4009 close, a relay restart…). */
  reconnects(): number;
  close(): void;
};

/**
 * Opens a session per `(api, group)`; each `onMessage` goes to `sink`.
 *
 * @example
 * ```ts
 * const set = await openSessions(members, "sdk", (m) => run?.onReceive(m.body));
 * ```
 */
export async function openSessions(
  members: { api: HttpClient; group: string }[],
  ack: AckMode,
  sink: (message: Message) => void,
  concurrency = 100,
): Promise<SessionSet> {
  const t0 = performance.now();
  const sessions = await pool(
    members,
    concurrency,
    ({ api, group }) =>
      new Promise<Session>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("session not synced within 60 s")), 60_000);
        const session: Session = new Session(api, {
          groups: [group],
          autoAck: ack !== "none",
          // The numbers in bench/README.md were measured without the SDK's liveness pings (an
          // idle session pings every 25 s); keep them comparable.
          pingIntervalMs: 0,
          ...(ack === "every" ? { ackDelayMs: 0 } : {}),
          onMessage: sink,
          onSynced: () => {
            clearTimeout(timer);
            resolve(session);
          },
        });
      }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return {
    sessions,
    seconds,
    reconnects: () => sessions.reduce((n, s) => n + s.connects - 1, 0),
    close: () => {
      for (const session of sessions) session.close();
    },
  };
}

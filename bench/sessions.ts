/**
 * @module
 * SDK sessions for the load: one {@link Session} per device, subscribed to its group, opened
 * with bounded concurrency and ready once the relay said `synced`. Messages go to whatever sink
 * is current, so the same sessions serve several runs.
 *
 * Acks: `each` is the SDK default (one `ack` frame per message received); `batched` acks the
 * highest seen `seq` per group every 200 ms, as a client that coalesces acks would; `none`
 * never acks.
 */

import { type HttpClient, type Message, Session } from "../client/mod.ts";
import { pool } from "./stats.ts";

/** How recipients acknowledge. */
export type AckMode = "each" | "batched" | "none";

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
 * const set = await openSessions(members, "each", (m) => run?.onReceive(m.body));
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
          autoAck: ack === "each",
          onMessage: sink,
          onSynced: () => {
            clearTimeout(timer);
            resolve(session);
          },
        });
      }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const acked = new Map<Session, Map<string, number>>();
  const ackTimer = ack === "batched"
    ? setInterval(() => {
      for (const session of sessions) {
        let done = acked.get(session);
        if (!done) acked.set(session, done = new Map());
        for (const [group, seq] of session.seen) {
          if ((done.get(group) ?? 0) < seq) {
            session.ack(group, seq);
            done.set(group, seq);
          }
        }
      }
    }, 200)
    : undefined;
  return {
    sessions,
    seconds,
    reconnects: () => sessions.reduce((n, s) => n + s.connects - 1, 0),
    close: () => {
      clearInterval(ackTimer);
      for (const session of sessions) session.close();
    },
  };
}

/**
 * The bus port's contract (relay/bus/bus.ts), as one suite every implementation runs: the
 * in-process bus (bus_local_test.ts) and the Postgres LISTEN/NOTIFY bus (bus_postgres_test.ts).
 * An implementation is opened twice over one database as two instances; for the in-process bus
 * both are the same bus, since one process is its only instance.
 */

import assert from "node:assert/strict";
import { sql } from "kysely";
import type { Bus, BusEvent } from "../../../relay/bus/bus.ts";
import type { Db } from "../../../relay/store/database.ts";
import type { StoredMessage } from "../../../relay/messages.ts";

/** Two instances of one bus implementation over one database. */
export type BusPair = { here: Bus; there: Bus; db: Db; close(): Promise<void> };

/** Registers the contract's tests for one implementation. */
export function busContract(
  name: string,
  open: () => Promise<BusPair>,
  options: { ignore?: boolean } = {},
): void {
  const test = (title: string, fn: (pair: BusPair) => Promise<void> | void) =>
    Deno.test({
      name: `${name}: ${title}`,
      ignore: options.ignore,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: async () => {
        const pair = await open();
        try {
          await fn(pair);
        } finally {
          await pair.close();
        }
      },
    });

  test("publish() delivers every kind of event to every subscriber here, in publish order", ({ here }) => {
    const first: BusEvent[] = [];
    const second: BusEvent[] = [];
    here.subscribe((event) => first.push(event));
    here.subscribe((event) => second.push(event));
    const published = mixedEvents(120);
    for (const event of published) here.publish(event);
    assert.deepEqual(first, published, "delivered synchronously, in order, to the publisher");
    assert.deepEqual(second, published);
  });

  test("events other than messages reach the other instance's subscribers in publish order", async ({ here, there }) => {
    const received: BusEvent[] = [];
    there.subscribe((event) => {
      if (event.kind !== "messages") received.push(event);
    });
    const published = mixedEvents(60).filter((e) => e.kind !== "messages");
    for (const event of published) here.publish(event);
    await eventually(() => received.length >= published.length);
    assert.deepEqual(received, published);
  });

  test("an event past Postgres's 8,000-byte notification limit arrives whole", async ({ here, there }) => {
    const received: BusEvent[] = [];
    there.subscribe((event) => received.push(event));
    const big: BusEvent = {
      kind: "membership",
      group: "g".repeat(22),
      event: "member_added",
      account: "a".repeat(43),
      notify: Array.from({ length: 400 }, (_, i) => `${i}`.padStart(43, "n")),
    };
    here.publish(big);
    await eventually(() => received.length >= 1);
    assert.deepEqual(received, [big]);
  });

  test("subscribe() returns the function that stops delivery to that handler only", ({ here }) => {
    const kept: BusEvent[] = [];
    const dropped: BusEvent[] = [];
    here.subscribe((event) => kept.push(event));
    const unsubscribe = here.subscribe((event) => dropped.push(event));
    here.publish({ kind: "revoked", device: "d1" });
    unsubscribe();
    here.publish({ kind: "revoked", device: "d2" });
    assert.deepEqual(kept.map((e) => e.kind === "revoked" && e.device), ["d1", "d2"]);
    assert.deepEqual(dropped.map((e) => e.kind === "revoked" && e.device), ["d1"]);
  });

  test("a commit's announcement reaches the other instance only when the transaction commits", async ({ here, there, db }) => {
    const announcement = here.announcement?.();
    if (!announcement) {
      // Only a bus with no other instances may leave it out.
      assert.equal(here, there, "a bus without announcement() has no other instances");
      return;
    }
    const received: BusEvent[] = [];
    there.subscribe((event) => received.push(event));
    const notify = (group: string) =>
      sql`select pg_notify(${announcement.channel}, ${
        JSON.stringify({ o: announcement.origin, k: "m", r: [[group, 1, 3]] })
      })`;
    await assert.rejects(
      db.transaction().execute(async (tx) => {
        await notify("r".repeat(22)).execute(tx);
        throw new Error("roll back");
      }),
      /roll back/,
    );
    await db.transaction().execute(async (tx) => {
      await notify("c".repeat(22)).execute(tx);
    });
    await eventually(() => received.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(
      received.map((e) => e.kind === "messages" && e.group),
      ["c".repeat(22)],
      "the committed announcement only (its messages are read from the database: none here)",
    );
  });

  test("onGap() handlers are not called while nothing was missed", async ({ here, there }) => {
    let gaps = 0;
    here.onGap(() => gaps++);
    there.onGap(() => gaps++);
    here.publish({ kind: "revoked", device: "d" });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(gaps, 0);
  });

  test("close() stops delivery to this instance's subscribers", async ({ here }) => {
    const received: BusEvent[] = [];
    here.subscribe((event) => received.push(event));
    await here.close();
    here.publish({ kind: "revoked", device: "late" });
    assert.deepEqual(received, []);
  });
}

/** `n` events cycling through every kind. */
function mixedEvents(n: number): BusEvent[] {
  const group = "g".repeat(22);
  const from = { account: "a".repeat(43), device: "d".repeat(43) };
  const message = (seq: number): StoredMessage => ({
    group,
    seq,
    from,
    created_at: 1,
    expires_at: null,
    body: "AAAA",
  });
  return Array.from({ length: n }, (_, i): BusEvent => {
    switch (i % 5) {
      case 0:
        return { kind: "messages", group, messages: [message(i)] };
      case 1:
        return { kind: "eph", origin: "elsewhere", group, from, body: `e${i}` };
      case 2:
        return {
          kind: "presence",
          device: `dev${i}`,
          account: from.account,
          groups: [group],
          online: true,
        };
      case 3:
        return {
          kind: "membership",
          group,
          event: "member_added",
          account: `acct${i}`,
          notify: [],
        };
      default:
        return { kind: "revoked", device: `dev${i}` };
    }
  });
}

/** Waits until `check` passes (bounded: 5 s). */
async function eventually(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not reached in 5 s");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

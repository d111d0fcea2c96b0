/**
 * @module
 * The fill of the growth scenario: `messages` rows written straight into a migrated Postgres
 * database with `insert … select generate_series` (setup, never through the relay), shaped like a
 * month of real traffic so sizes and plans are those of a real table. `groups` filler groups of six
 * senders each take the rows round-robin (consecutive rows belong to different groups, as live
 * traffic does), `seq` gap-free per group with `groups.last_seq` to match; ids as long as real
 * ones (group 22 characters, account and device 43, `client_id` a 36-character UUID), 342-byte
 * bodies; `created_at` spread evenly over the 30 days before the fill in insertion order and
 * `expires_at` 30 days later (the default retention), so the oldest day expires first. One more
 * group, the catch-up group, gets `catchup` rows interleaved with the last `10 × catchup` filler
 * rows: a backlog at the end of a big table, each page holding a few of its rows among others'.
 * Rows go in chunks of a million, each its own statement, so WAL and memory stay bounded.
 */

import type postgres from "postgres";

/** The shape of a fill. */
export type FillPlan = {
  /** Filler messages. */
  messages: number;
  /** Filler groups. */
  groups: number;
  /** Messages of the catch-up group. */
  catchup: number;
  /** The fill's "now" (ms): the newest row was created then. */
  now: number;
};

/** The catch-up group's id (22 characters, like a real one). */
export const CATCHUP_GROUP = "growth-catchup-group00";

/** Prefix of the filler groups' ids. */
const FILLER_PREFIX = "gw";

/** A month: the span of `created_at` and the default retention. */
export const MONTH_MS = 30 * 86_400_000;

const CHUNK = 1_000_000;

/** Whether the database already holds a fill (the scenario then reuses it). */
export async function existingFill(
  sql: postgres.Sql,
): Promise<{ groups: number; messages: number } | null> {
  const [row] = await sql.unsafe(
    `select count(*)::bigint as groups, coalesce(sum(last_seq), 0)::bigint as messages
     from groups where id like '${FILLER_PREFIX}%' or id = '${CATCHUP_GROUP}'`,
  );
  return Number(row.groups) > 0
    ? { groups: Number(row.groups) - 1, messages: Number(row.messages) }
    : null;
}

/** The columns after `seq`, as SQL over the group expression `g`, `seq` and `pos`. */
function rowSql(plan: FillPlan, total: number, g = "g"): string {
  const start = plan.now - MONTH_MS;
  return `
    rpad('a' || ${g} || '.' || (seq % 6), 43, 'x'),
    rpad('d' || ${g} || '.' || (seq % 6), 43, 'x'),
    md5(${g} || '/' || seq)::uuid::text,
    convert_to(repeat('x', 342), 'UTF8'),
    ${start}::bigint + (pos * ${MONTH_MS}::bigint) / ${total},
    ${start + MONTH_MS}::bigint + (pos * ${MONTH_MS}::bigint) / ${total}`;
}

const COLUMNS =
  `group_id, seq, sender_account, sender_device, client_id, body, created_at, expires_at`;

/**
 * Writes the fill; `progress` hears the rows written so far. Returns the seconds it took.
 *
 * @example
 * ```ts
 * await fill(sql, { messages: 1e7, groups: 10_000, catchup: 100_000, now: Date.now() });
 * ```
 */
export async function fill(
  sql: postgres.Sql,
  plan: FillPlan,
  progress: (rows: number) => void = () => {},
): Promise<number> {
  const t0 = performance.now();
  const { messages: n, groups, catchup: c } = plan;
  const total = n + c;
  // Filler row s (0-based) is in group s % groups with seq s / groups + 1: gap-free per group.
  const gid = (g: string) => `'${FILLER_PREFIX}' || lpad((${g})::text, 20, '0')`;
  await sql.unsafe(
    `insert into groups (id, last_seq, retention_s, created_at)
     select ${gid("g")}, case when g < ${n} then (${n} - 1 - g) / ${groups} + 1 else 0 end,
            ${MONTH_MS / 1000}, ${plan.now - MONTH_MS}
     from generate_series(0, ${groups - 1}) g
     union all select '${CATCHUP_GROUP}', ${c}, ${MONTH_MS / 1000}, ${plan.now - MONTH_MS}`,
  );
  // Rows reach the heap in the order they are produced (generate_series, then the window's
  // order in the tail): no sort of the wide rows. The tail: the last `m` filler rows and the
  // catch-up group's rows, interleaved.
  const m = Math.min(n, 10 * c);
  for (let from = 0; from < n - m; from += CHUNK) {
    const to = Math.min(n - m, from + CHUNK) - 1;
    await sql.unsafe(
      `insert into messages (${COLUMNS})
       select ${gid("g")}, seq, ${rowSql(plan, total)}
       from (select s % ${groups} as g, s / ${groups} + 1 as seq, s as pos
             from generate_series(${from}::bigint, ${to}::bigint) s) x`,
    );
    progress(to + 1);
  }
  await sql.unsafe(
    `insert into messages (${COLUMNS})
     select case when g is null then '${CATCHUP_GROUP}' else ${gid("g")} end, seq,
            ${rowSql(plan, total, "coalesce(g::text, 'c')")}
     from (
       select g, seq, ${n - m}::bigint + row_number() over (order by frac, g nulls first) - 1
         as pos
       from (
         select s % ${groups} as g, s / ${groups} + 1 as seq,
                (s - ${n - m})::float8 / ${Math.max(m, 1)} as frac
         from generate_series(${n - m}::bigint, ${n - 1}::bigint) s
         union all
         select null, k, (k - 1)::float8 / ${Math.max(c, 1)}
         from generate_series(1::bigint, ${c}::bigint) k
       ) u
     ) x`,
  );
  progress(total);
  return (performance.now() - t0) / 1000;
}

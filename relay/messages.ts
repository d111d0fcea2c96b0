/**
 * @module
 * Stored messages: the row ↔ wire mapping, the visibility rule for targeted (`to`) messages, and
 * the reads of PROTOCOL.md (page after a `seq`, inbox across a device's groups). Expired messages
 * are never returned, even before the sweeper removes them.
 */

import { sql } from "kysely";
import type { Db } from "./store/database.ts";
import { toBase64Url } from "./base/encoding.ts";
import type { StoredMessage } from "./protocol.ts";

export type { StoredMessage };

/**
 * The JSON text of a message (the `messages` entries of a `msgs` frame), built by concatenation:
 * one `JSON.stringify` of the whole object per message was the largest JavaScript cost of a
 * replay after the database driver (bench/README.md, "Replay"). Only the parts that could need
 * escaping go through `JSON.stringify` (ids and `to`, a few short strings); `body` is base64url
 * (validated on send, or encoded by Postgres, see {@link BODY_SQL}) and numbers are numbers, so
 * neither needs escaping. The text parses to the same value as `JSON.stringify(message)`.
 */
export function messageJson(message: StoredMessage): string {
  return messageText("{", message);
}

/** The wire form of a message: the stored message with `"t":"msg"` for WebSocket frames. */
export function messageFrame(message: StoredMessage): string {
  return messageText('{"t":"msg",', message);
}

function messageText(open: string, m: StoredMessage): string {
  const from = m.from;
  let text = open + '"group":' + JSON.stringify(m.group) + ',"seq":' + m.seq + ',"from":' +
    (from === null ? "null" : '{"account":' + JSON.stringify(from.account) + ',"device":' +
      JSON.stringify(from.device) + "}") +
    ',"created_at":' + m.created_at + ',"expires_at":' + m.expires_at + ',"body":"' + m.body +
    '"';
  if (m.blob) text += ',"blob":{"id":' + JSON.stringify(m.blob.id) + ',"size":' + m.blob.size + "}";
  if (m.to) text += ',"to":' + JSON.stringify(m.to);
  return text + "}";
}

/** True when `device` may see `message`: untargeted, targeted at it, or sent by it. */
export function visibleTo(
  message: { to?: string[] | null; from: { device: string } | null },
  device: string,
) {
  return !message.to || message.from?.device === device || message.to.includes(device);
}

/**
 * The body as base64url text, encoded by Postgres: `encode(…, 'base64')` of the whole 3-byte
 * groups (no padding) with its line breaks removed, the last 1–2 bytes encoded apart and cut
 * before their padding, then the two characters that differ swapped with `replace`. So a replay
 * never decodes hex `bytea` text nor re-encodes bytes on the relay's thread. The obvious
 * `translate(…, '+/=\n', '-_')` and `rtrim(…, '=')` are the slow way: in a UTF-8 database both
 * walk every character of the string, and together they cost Postgres about 15 µs per
 * 342-character body, 1.5 s per 100,000 messages (bench/README.md, "Replay").
 */
const BODY_SQL = `replace(replace(
    replace(encode(substring(m.body from 1 for length(m.body) - length(m.body) % 3), 'base64'),
            chr(10), '')
    || case length(m.body) % 3
         when 0 then ''
         when 1 then left(encode(substring(m.body from length(m.body)), 'base64'), 2)
         else left(encode(substring(m.body from length(m.body) - 1), 'base64'), 3)
       end,
    '+', '-'), '/', '_')`;
/** The columns of a {@link MessageRow}, read from a `messages m` row with the body as {@link BODY_SQL}. */
const COLUMNS = sql.raw(`m.group_id, m.seq, m.sender_account, m.sender_device, ${BODY_SQL} as body,
           m.blob_id, m.blob_size, m.to_devices, m.created_at, m.expires_at`);

/**
 * The condition on `messages m` that a message is stored for `device` at `now`: not expired, and
 * not targeted at other devices — the SQL form of {@link visibleTo}.
 */
function storedFor(device: string, now: number) {
  return sql`(m.expires_at is null or m.expires_at > ${now})
        and (m.to_devices is null or m.sender_device = ${device} or ${device} = any(m.to_devices))`;
}

type MessageRow = {
  group_id: string;
  seq: number;
  sender_account: string | null;
  sender_device: string | null;
  /** base64url text (see {@link BODY_SQL}); bytes only from callers that select the raw column. */
  body: string | Uint8Array;
  blob_id: string | null;
  blob_size?: number | null;
  to_devices: string[] | null;
  created_at: number;
  expires_at: number | null;
};

/** Maps a database row to the wire shape. */
export function fromRow(row: MessageRow): StoredMessage {
  const message: StoredMessage = {
    group: row.group_id,
    seq: row.seq,
    from: row.sender_account === null || row.sender_device === null
      ? null
      : { account: row.sender_account, device: row.sender_device },
    created_at: row.created_at,
    expires_at: row.expires_at,
    body: typeof row.body === "string" ? row.body : toBase64Url(new Uint8Array(row.body)),
  };
  if (row.blob_id) message.blob = { id: row.blob_id, size: row.blob_size ?? 0 };
  if (row.to_devices) message.to = row.to_devices;
  return message;
}

/** One page of a group's messages visible to a device, with the group's `last_seq` read in the same snapshot. */
export type Page = { messages: StoredMessage[]; last_seq: number; has_more: boolean };

/**
 * Reads messages of `group` after `after` visible to `device`, lowest `seq` first. `last_seq` is
 * read in the same statement (one snapshot), so every message up to it is committed and either
 * returned, invisible to this device, or expired: a reader that continues from `last_seq` when
 * `has_more` is false never misses anything.
 */
export async function readPage(
  db: Db,
  group: string,
  device: string,
  after: number,
  limit: number,
  now: number,
): Promise<Page> {
  const result = await sql<MessageRow & { last_seq: number }>`
    select g.last_seq, ${COLUMNS}
    from groups g
    left join lateral (
      select * from messages m
      where m.group_id = g.id and m.seq > ${after}
        and ${storedFor(device, now)}
      order by m.seq
      limit ${limit + 1}
    ) m on true
    where g.id = ${group}`.execute(db);
  const rows = result.rows;
  if (rows.length === 0) return { messages: [], last_seq: 0, has_more: false };
  const last_seq = rows[0].last_seq;
  const found = rows.filter((r) => r.seq !== null);
  const has_more = found.length > limit;
  return { messages: found.slice(0, limit).map(fromRow), last_seq, has_more };
}

/**
 * A message's JSON text built by Postgres, the same text as {@link messageJson} (a test checks
 * both databases): ids through `to_json`, the body as {@link BODY_SQL}, numbers as they are.
 */
const MESSAGE_JSON = sql.raw(`'{"group":' || to_json(m.group_id)::text || ',"seq":' || m.seq
  || ',"from":' || case when m.sender_account is null or m.sender_device is null then 'null'
    else '{"account":' || to_json(m.sender_account)::text || ',"device":'
      || to_json(m.sender_device)::text || '}' end
  || ',"created_at":' || m.created_at || ',"expires_at":' || coalesce(m.expires_at::text, 'null')
  || ',"body":"' || ${BODY_SQL} || '"'
  || case when m.blob_id is null then ''
    else ',"blob":{"id":' || to_json(m.blob_id)::text || ',"size":' || coalesce(m.blob_size, 0)
      || '}' end
  || case when m.to_devices is null then '' else ',"to":' || to_json(m.to_devices)::text end
  || '}'`);

/**
 * A page of a replay: each message's JSON text, as {@link messageJson} would write it, with
 * `last_seq` read in the same snapshot as in {@link Page}.
 */
export type ReplayPage = {
  /** The messages' JSON texts (`{"group":…}`), `seq` ascending. */
  texts: string[];
  /** The `seq` of the last message in `texts` (`after` when there is none). */
  last: number;
  last_seq: number;
  /** The page is full: more may follow (a next read may also find none). */
  has_more: boolean;
};

/** Body bytes a replay page holds at most (past its first message): 1 MiB. */
export const REPLAY_PAGE_BYTES = 1024 * 1024;

/**
 * {@link readPage} for a replay, with the frames' text built by Postgres: the page comes back as
 * one row holding every message's JSON joined by newlines (JSON text never holds a raw newline),
 * so the relay neither parses a row per message nor serializes one — a replay costs it one
 * string split and, for `msg` frames, one concatenation per message. Postgres builds the text
 * meanwhile on its own core. A page stops at `limit` messages or once its bodies pass
 * `maxBytes` (a message starting below it is the last), so large bodies keep pages small.
 */
export async function readReplayPage(
  db: Db,
  group: string,
  device: string,
  after: number,
  limit: number,
  now: number,
  maxBytes = REPLAY_PAGE_BYTES,
): Promise<ReplayPage> {
  const result = await sql<
    { last_seq: number; n: number; scanned: number; last: number | null; texts: string }
  >`
    select g.last_seq, p.n, p.scanned, p.last, p.texts
    from groups g
    cross join lateral (
      select count(*) filter (where m.start < ${maxBytes})::int as n, count(*)::int as scanned,
             max(m.seq) filter (where m.start < ${maxBytes}) as last,
             string_agg(${MESSAGE_JSON}, chr(10) order by m.seq)
               filter (where m.start < ${maxBytes}) as texts
      from (
        select m.*, coalesce(sum(length(m.body)) over (order by m.seq
                 rows between unbounded preceding and 1 preceding), 0) as start
        from (
          select * from messages m
          where m.group_id = g.id and m.seq > ${after}
            and ${storedFor(device, now)}
          order by m.seq
          limit ${limit}
        ) m
      ) m
    ) p
    where g.id = ${group}`.execute(db);
  const row = result.rows[0];
  if (!row) return { texts: [], last: after, last_seq: 0, has_more: false };
  return {
    texts: row.n === 0 ? [] : row.texts.split("\n"),
    last: row.last ?? after,
    last_seq: row.last_seq,
    has_more: row.scanned > row.n || row.scanned >= limit,
  };
}

/**
 * Messages after the device's cursors across all groups of its account, lowest `seq` first per
 * group, at most `limit` in all. `cursors` overrides stored cursors (unflushed acks).
 */
export async function readInbox(
  db: Db,
  account: string,
  device: string,
  limit: number,
  now: number,
  pendingCursors: Map<string, number>,
): Promise<StoredMessage[]> {
  const groups = [...pendingCursors.keys()];
  const seqs = groups.map((g) => pendingCursors.get(g)!);
  const result = await sql<MessageRow>`
    with mine as (
      select gm.group_id, greatest(coalesce(c.seq, 0), coalesce(p.seq, 0)) as after
      from group_members gm
      left join cursors c on c.group_id = gm.group_id and c.device_id = ${device}
      left join unnest(${groups}::text[], ${seqs}::bigint[]) as p(group_id, seq)
        on p.group_id = gm.group_id
      where gm.account_id = ${account}
    )
    select ${COLUMNS}
    from mine
    cross join lateral (
      select * from messages m
      where m.group_id = mine.group_id and m.seq > mine.after
        and ${storedFor(device, now)}
      order by m.seq
      limit ${limit}
    ) m
    order by m.group_id, m.seq
    limit ${limit}`.execute(db);
  return result.rows.map(fromRow);
}

/** Reads every message (targeted ones too) in the given `seq` ranges, group then `seq` order. */
export async function readRanges(
  db: Db,
  ranges: { group: string; from: number; to: number }[],
): Promise<StoredMessage[]> {
  if (ranges.length === 0) return [];
  const result = await sql<MessageRow>`
    select ${COLUMNS}
    from unnest(${ranges.map((r) => r.group)}::text[], ${ranges.map((r) => r.from)}::bigint[],
                ${ranges.map((r) => r.to)}::bigint[]) as r(g, a, b)
    cross join lateral (
      select * from messages m where m.group_id = r.g and m.seq between r.a and r.b
    ) m
    order by m.group_id, m.seq`.execute(db);
  return result.rows.map(fromRow);
}

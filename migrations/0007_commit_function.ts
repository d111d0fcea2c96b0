/**
 * @module
 * Group commit in one round trip: `sealpost_commit(...)` takes a whole batch of sends as one array
 * per column and, called as a single statement (its own transaction), does what the relay did in
 * eight statements: locks every touched group's row in id order (`for no key update`: the rule
 * of order; batches never deadlock), locks the referenced live blobs, checks membership and blob
 * ownership, answers repeats of a `(group, device, client_id)` with their original result (also
 * within the batch), assigns the next `seq`s of each group under its lock, inserts the messages
 * (bodies decoded from base64url by Postgres), bumps `groups.last_seq`, extends the referenced
 * blobs' lives, and — when given a channel — announces the committed ranges with `pg_notify`
 * inside the transaction, chunked below the 8,000-byte payload limit, in the bus's wire shape
 * `{"o":origin,"k":"m","r":[[group,from,to],…]}`. It returns one outcome per send, in input
 * order: `ok` (with `duplicate`), `no_group` or `no_blob`. A rejected send never consumes a
 * `seq`. Frozen once released.
 */

import { type Kysely, sql } from "kysely";

const FUNCTION = `
create function sealpost_commit(
  p_group text[], p_account text[], p_device text[], p_client text[], p_body text[],
  p_ttl bigint[], p_blob text[], p_blob_size bigint[], p_to text[],
  p_now bigint, p_max_ttl_ms bigint, p_channel text, p_origin text
) returns setof sealpost_send_outcome
language plpgsql volatile as $fn$
declare
  outcomes sealpost_send_outcome[];
  max_s bigint := p_max_ttl_ms / 1000;
begin
  -- The rule of order: each touched group's row, locked in id order before anything is read.
  -- Every later statement takes a fresh snapshot, so it sees whatever the previous holder of
  -- the lock committed (a repeat of its client_id, its last_seq).
  perform 1 from groups where id = any(p_group) order by id for no key update;
  -- Referenced live blobs, in id order, so the sweeper cannot delete one under this commit.
  perform 1 from blobs
    where id = any(p_blob) and (expires_at is null or expires_at > p_now)
    order by id for no key update;

  with s as (
    select u.*
    from unnest(p_group, p_account, p_device, p_client, p_body, p_ttl, p_blob, p_blob_size, p_to)
      with ordinality as u(g, a, d, c, b, ttl, bl, bs, t, i)
  ),
  judged as (
    select s.*, gr.last_seq, gr.retention_s,
      case
        when gr.id is null or not exists (
          select 1 from group_members gm where gm.group_id = s.g and gm.account_id = s.a
        ) then 'no_group'
        when s.bl is not null and not exists (
          select 1 from blobs x
          where x.id = s.bl and x.group_id = s.g and (x.expires_at is null or x.expires_at > p_now)
        ) then 'no_blob'
        else 'ok'
      end as verdict
    from s left join groups gr on gr.id = s.g
  ),
  keyed as (
    select j.*, p.seq as p_seq, p.created_at as p_created, p.expires_at as p_expires,
      row_number() over (partition by j.g, j.d, j.c order by j.i) as nth
    from judged j
    -- one index probe per send, never a scan of the table
    left join lateral (
      select m.seq, m.created_at, m.expires_at from messages m
      where m.group_id = j.g and m.sender_device = j.d and m.client_id = j.c
    ) p on true
    where j.verdict = 'ok'
  ),
  fresh as (
    select k.*, k.last_seq + row_number() over (partition by k.g order by k.i) as new_seq,
      -- ttl_s capped by the group's retention (0: none) and the server's max TTL (null: none)
      p_now + least(k.ttl, case when k.retention_s > 0 then k.retention_s end, max_s) * 1000
        as new_expires
    from keyed k where k.p_seq is null and k.nth = 1
  ),
  inserted as (
    insert into messages (group_id, seq, sender_account, sender_device, client_id, body,
                          blob_id, blob_size, to_devices, created_at, expires_at)
    select f.g, f.new_seq, f.a, f.d, f.c,
      decode(translate(f.b, '-_', '+/') || repeat('=', (4 - length(f.b) % 4) % 4), 'base64'),
      f.bl, f.bs, case when f.t is null then null else string_to_array(f.t, ',') end,
      p_now, f.new_expires
    from fresh f
    returning 1
  ),
  bumped as (
    update groups gr set last_seq = x.top
    from (select f.g, max(f.new_seq) as top from fresh f group by f.g) x
    where gr.id = x.g
    returning 1
  ),
  lived as (
    -- each referenced blob lives as long as its longest-lived message (null: forever); the
    -- first reference replaces the orphan grace
    update blobs b set
      expires_at = case
        when b.referenced_at is null then x.life
        when b.expires_at is null or x.life is null then null
        else greatest(b.expires_at, x.life) end,
      referenced_at = coalesce(b.referenced_at, p_now)
    from (
      select f.bl,
        case when bool_or(f.new_expires is null) then null else max(f.new_expires) end as life
      from fresh f where f.bl is not null group by f.bl
    ) x
    where b.id = x.bl
    returning 1
  )
  select array_agg(row(
      j.i, j.g, j.verdict,
      coalesce(k.p_seq, f.new_seq),
      case when k.p_seq is not null then k.p_created when f.g is not null then p_now end,
      case when k.p_seq is not null then k.p_expires else f.new_expires end,
      k.p_seq is not null or k.nth > 1
    )::sealpost_send_outcome order by j.i)
  into outcomes
  from judged j
  left join keyed k on k.i = j.i
  left join fresh f on f.g = k.g and f.d = k.d and f.c = k.c;

  if p_channel is not null then
    perform pg_notify(p_channel, json_build_object(
      'o', p_origin, 'k', 'm', 'r', json_agg(json_build_array(r.g, r.lo, r.hi) order by r.g)
    )::text)
    from (
      select r.*, sum(octet_length(r.g) + 32) over (order by r.g) / 7000 as chunk
      from (
        select o.group_id as g, min(o.seq) as lo, max(o.seq) as hi
        from unnest(outcomes) o
        where o.verdict = 'ok' and not o.duplicate
        group by o.group_id
      ) r
    ) r
    group by r.chunk;
  end if;

  return query select * from unnest(outcomes);
end
$fn$`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(`
    create type sealpost_send_outcome as (
      i bigint, group_id text, verdict text, seq bigint, created_at bigint, expires_at bigint,
      duplicate boolean
    )`).execute(db);
  await sql.raw(FUNCTION).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw(`drop function sealpost_commit`).execute(db);
  await sql.raw(`drop type sealpost_send_outcome`).execute(db);
}

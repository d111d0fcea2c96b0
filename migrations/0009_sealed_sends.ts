/**
 * @module
 * Sealed group sends (issue 16): a group may hold the verifier of a send capability — the
 * SHA-256 of a secret its members share inside their encryption — and a send that presents the
 * secret is stored without a sender. This migration adds `groups.send_verifier`, makes the sender
 * columns of `messages` nullable (null for sealed messages), makes a sealed send's `client_id`
 * unique per group, and adds beside `sealpost_commit` of migration 0007 an overload taking one
 * more array, `p_verifier`: for a sealed send (account and device null) the hex SHA-256 of the
 * capability it presented, which must equal the group's verifier — checked under the group's row
 * lock like membership, so order and durability are those of every send. Everything else in the
 * function is 0007's. 0007's function stays (expand, then contract: a relay of the version
 * before this one keeps committing during a rolling deploy); a later migration may drop it once
 * no such relay runs. Frozen once released.
 */

import { type Kysely, sql } from "kysely";

/** Runs statements one at a time: drivers' extended protocol takes one statement per query. */
async function run(db: Kysely<unknown>, script: string): Promise<void> {
  for (const statement of script.split(";").map((s) => s.trim()).filter(Boolean)) {
    await sql.raw(statement).execute(db);
  }
}

const FUNCTION = `
create function sealpost_commit(
  p_group text[], p_account text[], p_device text[], p_client text[], p_body text[],
  p_ttl bigint[], p_blob text[], p_blob_size bigint[], p_to text[],
  p_now bigint, p_max_ttl_ms bigint, p_channel text, p_origin text, p_verifier text[]
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
    from unnest(p_group, p_account, p_device, p_client, p_body, p_ttl, p_blob, p_blob_size, p_to,
                p_verifier)
      with ordinality as u(g, a, d, c, b, ttl, bl, bs, t, v, i)
  ),
  judged as (
    select s.*, gr.last_seq, gr.retention_s,
      case
        when gr.id is null then 'no_group'
        -- a sealed send: the capability's SHA-256 must be the group's verifier, read under the
        -- row lock taken above, so a rotation orders with sends
        when s.v is not null then
          case when gr.send_verifier is not null and encode(gr.send_verifier, 'hex') = s.v
            then 'ok' else 'no_group' end
        when not exists (
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
    select j.*, coalesce(p.seq, q.seq) as p_seq,
      coalesce(p.created_at, q.created_at) as p_created,
      case when p.seq is not null then p.expires_at else q.expires_at end as p_expires,
      row_number() over (partition by j.g, j.d, j.c order by j.i) as nth
    from judged j
    -- one index probe per send, never a scan of the table: by device, or for a sealed send
    -- (no device) through the partial index of sealed client_ids
    left join lateral (
      select m.seq, m.created_at, m.expires_at from messages m
      where j.d is not null and m.group_id = j.g and m.sender_device = j.d and m.client_id = j.c
    ) p on true
    left join lateral (
      select m.seq, m.created_at, m.expires_at from messages m
      where j.d is null and m.group_id = j.g and m.sender_device is null and m.client_id = j.c
    ) q on true
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
  left join fresh f on f.g = k.g and f.d is not distinct from k.d and f.c = k.c;

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
  await run(
    db,
    `
    alter table groups add column send_verifier bytea;
    alter table messages alter column sender_account drop not null;
    alter table messages alter column sender_device drop not null;
    create unique index messages_sealed_client_id_idx on messages (group_id, client_id)
      where sender_device is null
  `,
  );
  await sql.raw(FUNCTION).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw(`drop function sealpost_commit(text[], text[], text[], text[], text[], bigint[],
    text[], bigint[], text[], bigint, bigint, text, text, text[])`).execute(db);
  await run(
    db,
    `
    drop index messages_sealed_client_id_idx;
    delete from messages where sender_device is null;
    alter table messages alter column sender_device set not null;
    alter table messages alter column sender_account set not null;
    alter table groups drop column send_verifier
  `,
  );
}

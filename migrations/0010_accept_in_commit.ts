/**
 * @module
 * A first send accepts its invitation in the commit (issues 14 and 16): beside the overloads of
 * migrations 0007 and 0009, `sealpost_commit` gains one taking two more arguments — `p_accept`,
 * per send, whether the sender's membership may still be an invitation (an HTTP send, whose
 * relay does not know), and `p_max_groups`, the accepted-group quota. For those sends the
 * function turns an `invited` membership into `accepted` under the group's row lock, before the
 * membership check, unless the account is already in `p_max_groups` accepted groups (its sends
 * are then refused with verdict `group_quota`, and the membership stays invited); a send that
 * accepted answers verdict `accepted` (otherwise as `ok`), so the relay announces
 * `member_accepted` after the commit. An HTTP send so costs one round trip instead of two (the
 * invitation look-up before it). Everything else is 0009's. Expand only: 0007's and 0009's
 * functions stay, so a relay of the previous version keeps committing during a rolling deploy.
 * Two first sends of one account into two groups in one batch may both accept at quota − 1 (as
 * two accept calls at once could before). Frozen once released.
 */

import { type Kysely, sql } from "kysely";

const FUNCTION = `
create function sealpost_commit(
  p_group text[], p_account text[], p_device text[], p_client text[], p_body text[],
  p_ttl bigint[], p_blob text[], p_blob_size bigint[], p_to text[],
  p_now bigint, p_max_ttl_ms bigint, p_channel text, p_origin text, p_verifier text[],
  p_accept boolean[], p_max_groups bigint
) returns setof sealpost_send_outcome
language plpgsql volatile as $fn$
declare
  outcomes sealpost_send_outcome[];
  accepted text[];
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

  -- Issue 16: a member's first send in a group it was only invited to accepts the invitation,
  -- here under the group's row lock, unless the account is already in p_max_groups accepted
  -- groups (its sends are then refused 'group_quota' below). Only sends marked p_accept.
  -- (A send that will be refused for its blob accepts nothing.)
  with wanted as (
    select distinct u.g, u.a
    from unnest(p_group, p_account, p_accept, p_blob) as u(g, a, want, bl)
    where u.want and u.a is not null and (u.bl is null or exists (
      select 1 from blobs x
      where x.id = u.bl and x.group_id = u.g and (x.expires_at is null or x.expires_at > p_now)
    ))
  ),
  done as (
    update group_members gm set state = 'accepted'
    from wanted w
    where gm.group_id = w.g and gm.account_id = w.a and gm.state = 'invited'
      and (p_max_groups is null or (
        select count(*) from group_members x where x.account_id = w.a and x.state = 'accepted'
      ) < p_max_groups)
    returning gm.group_id, gm.account_id
  )
  select coalesce(array_agg(done.group_id || ' ' || done.account_id), '{}') into accepted
  from done;

  with s as (
    select u.*
    from unnest(p_group, p_account, p_device, p_client, p_body, p_ttl, p_blob, p_blob_size, p_to,
                p_verifier, p_accept)
      with ordinality as u(g, a, d, c, b, ttl, bl, bs, t, v, acc, i)
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
        -- still invited after the acceptance above: the account is at its group quota
        when s.acc and exists (
          select 1 from group_members gm
          where gm.group_id = s.g and gm.account_id = s.a and gm.state = 'invited'
        ) then 'group_quota'
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
      j.i, j.g,
      -- 'accepted': ok, and this commit accepted the sender's invitation (the relay announces it)
      case when j.verdict = 'ok' and j.g || ' ' || j.a = any(accepted) then 'accepted'
        else j.verdict end,
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
        where o.verdict in ('ok', 'accepted') and not o.duplicate
        group by o.group_id
      ) r
    ) r
    group by r.chunk;
  end if;

  return query select * from unnest(outcomes);
end
$fn$`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(FUNCTION).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw(`drop function sealpost_commit(text[], text[], text[], text[], text[], bigint[],
    text[], bigint[], text[], bigint, bigint, text, text, text[], boolean[], bigint)`).execute(db);
}

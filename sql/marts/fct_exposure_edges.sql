-- grain: one row per snapshot × edge (src, dst, kind)
-- The exposure graph, oriented the way a loss travels: a loss at src reaches dst.
--   collateral: token → venue that holds it as collateral; margin: token → perps/options venue
--   (for perps, the token the margin is held in); debt: borrower account → venue it owes;
--   issued_by: issuing venue → its claim token (aTokens, the LST, LP shares, oTokens);
--   holds: claim token → account holding it, and venue → account with a claim on it (a
--   supply position, or a deposit the venue lends out, i.e. one it issues a token for).
-- weight = the share of dst's loss-absorbing buffer the edge puts at risk:
-- min(1, value_usd / buffer); 1 when dst has no buffer (tokens; venues whose buffer is zero).
-- An account's buffer is its net worth over priced positions. Unpriced positions are left out.
with pos as (
    select * from int_positions where amount_usd > 0
),
lent_out as (  -- deposits that are claims on the venue: it issues a token for that asset
    select chain_id, issued_by as venue, underlying as token
    from int_tokens where token_kind = 'atoken'
),
outstanding as (  -- the USD value of each claim token in circulation
    select p.snapshot_block, p.chain_id, t.issued_by as venue, t.token, sum(p.amount_usd) as value
    from pos as p
    join int_tokens as t
        on t.chain_id = p.chain_id and t.token_kind = 'atoken' and t.issued_by = p.venue
        and t.underlying = p.token and p.side = 'collateral'
    group by all
    union all
    select p.snapshot_block, p.chain_id, t.issued_by, t.token, sum(p.amount_usd)
    from pos as p
    join int_tokens as t on t.chain_id = p.chain_id and t.token = p.token
    where p.side = 'holding' and t.issued_by is not null
    group by all
),
edges as (
    select snapshot_block, chain_id, 'token:' || coalesce(backing_token, token) as src,
           'venue:' || venue as dst, side as kind, sum(amount_usd) as value_usd
    from pos where side in ('collateral', 'margin')
    group by all
    union all
    select snapshot_block, chain_id, 'account:' || account, 'venue:' || venue, 'debt',
           sum(amount_usd)
    from pos where side = 'debt'
    group by all
    union all
    select snapshot_block, chain_id, 'venue:' || venue, 'token:' || token, 'issued_by',
           sum(value)
    from outstanding
    group by all
    union all
    select snapshot_block, chain_id, 'token:' || token, 'account:' || account, 'holds',
           sum(amount_usd)
    from pos where side = 'holding'
    group by all
    union all
    select p.snapshot_block, p.chain_id, 'venue:' || p.venue, 'account:' || p.account, 'holds',
           sum(p.amount_usd)
    from pos as p
    left join lent_out as l on l.chain_id = p.chain_id and l.venue = p.venue and l.token = p.token
    where p.side = 'supply' or (p.side = 'collateral' and l.venue is not null)
    group by all
),
buffers as (
    select snapshot_block, chain_id, 'venue:' || venue as node, buffer_usd
    from fct_venue_balance_sheet
    union all
    select snapshot_block, chain_id, 'account:' || account,
           greatest(sum(case when side = 'debt' then -amount_usd else amount_usd end), 0)
    from pos
    group by all
),
names as (
    select chain_id, 'venue:' || venue as node, venue as name from ref_venues
    union all
    select chain_id, 'token:' || token, symbol from int_tokens
)
select
    e.snapshot_block,
    e.chain_id,
    e.src,
    split_part(e.src, ':', 1) as src_type,
    coalesce(ns.name, split_part(e.src, ':', 2)) as src_name,
    e.dst,
    split_part(e.dst, ':', 1) as dst_type,
    coalesce(nd.name, split_part(e.dst, ':', 2)) as dst_name,
    e.kind,
    e.value_usd,
    b.buffer_usd as dst_buffer_usd,
    case
        when e.value_usd <= 0 then 0
        when coalesce(b.buffer_usd, 0) <= 0 then 1
        else least(1, e.value_usd / b.buffer_usd)
    end as weight
from edges as e
left join buffers as b
    on b.chain_id = e.chain_id and b.snapshot_block = e.snapshot_block and b.node = e.dst
left join names as ns on ns.chain_id = e.chain_id and ns.node = e.src
left join names as nd on nd.chain_id = e.chain_id and nd.node = e.dst
